# rpclog_tests.cmake: process tests of the operations log: a real zshare-broker shipping its outbox to a real
# zshare-rpclog (logger down, crashes of either, torn tail, tail/QUERY, rpcinfo when rpcbind can run).
# Included from tests/integration/CMakeLists.txt; ZSHARE_PYTHON and ZSHARE_TEST_PYTHONPATH come from tests/.
add_test(NAME rpclog
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/rpclog_test.py
                 --broker-bin $<TARGET_FILE:zshare-broker> --rpclog-bin $<TARGET_FILE:zshare-rpclog>)
set_tests_properties(rpclog PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 180)
