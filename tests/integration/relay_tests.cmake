# relay_tests.cmake: zshare-relay's process test: a real relay on loopback pairing pyzmq sockets that dial it
# through libzmq's SOCKS5 client, and raw SOCKS5 clients for refusals, caps and timeouts.
# Included from tests/integration/CMakeLists.txt; ZSHARE_PYTHON and ZSHARE_TEST_PYTHONPATH come from tests/.
add_test(NAME relay
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/relay_test.py --relay-bin $<TARGET_FILE:zshare-relay>)
set_tests_properties(relay PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 180)
