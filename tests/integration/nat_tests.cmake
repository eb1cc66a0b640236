# nat_tests.cmake: the network-namespace NAT lab (tests/pylib/nat_lab.py: real kernel NAT with nftables) and the
# tests run in it. Root, iproute2 and nftables (tcpdump for the capture) or they SKIP (77), saying why. Labs are
# isolated from each other (own namespaces, own addresses): no lock needed. TIMEOUT_SIGNAL_NAME (CMake >= 3.27)
# lets a lab's SIGTERM handler tear down; its guardian process covers the SIGKILL of older CMake.
# Included from tests/integration/CMakeLists.txt; ZSHARE_PYTHON and ZSHARE_TEST_PYTHONPATH come from tests/.
add_test(NAME nat_lab COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/nat_lab_test.py)
set_tests_properties(nat_lab PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 60
  SKIP_RETURN_CODE 77 TIMEOUT_SIGNAL_NAME SIGTERM TIMEOUT_SIGNAL_GRACE_PERIOD 5)

add_test(NAME nat
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/nat_test.py
                 --broker-bin $<TARGET_FILE:zshare-broker> --peer-bin $<TARGET_FILE:zshare-peer>
                 --relay-bin $<TARGET_FILE:zshare-relay>)
set_tests_properties(nat PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 240
  SKIP_RETURN_CODE 77 TIMEOUT_SIGNAL_NAME SIGTERM TIMEOUT_SIGNAL_GRACE_PERIOD 5)
