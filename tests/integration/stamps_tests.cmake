# stamps_tests.cmake: where operation stamps come from, end to end: real zshare-peer processes (one-shot and piped
# shell) stamp their requests with a real zshare-timesvc (up, down, killed and restarted), a real zshare-broker
# ships them to a real zshare-rpclog; the log lines' stamps are checked ('*' = local clock), and the warnings.
# Included from tests/integration/CMakeLists.txt; ZSHARE_PYTHON and ZSHARE_TEST_PYTHONPATH come from tests/.
add_test(NAME stamps
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/stamps_test.py
                 --broker-bin $<TARGET_FILE:zshare-broker> --peer-bin $<TARGET_FILE:zshare-peer>
                 --rpclog-bin $<TARGET_FILE:zshare-rpclog> --timesvc-bin $<TARGET_FILE:zshare-timesvc>)
set_tests_properties(stamps PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 120)
