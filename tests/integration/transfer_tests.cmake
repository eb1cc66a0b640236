# transfer_tests.cmake: peer-to-peer transfer process tests, included from tests/integration/CMakeLists.txt.
# transfer_test.py runs real `zshare-peer serve` seeders and `zshare-peer get` downloaders against a real
# zshare-broker on loopback (single/multi source, kills, corruption, resume, refusals, a sparse 4.3 GB file), all
# over CurveZMQ: the 4.3 GB file alone takes about 80 s encrypted on these 2-core machines (45 s in plaintext).
add_test(NAME transfer
  COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/transfer_test.py
          --broker-bin $<TARGET_FILE:zshare-broker> --peer-bin $<TARGET_FILE:zshare-peer>)
set_tests_properties(transfer PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 360)
