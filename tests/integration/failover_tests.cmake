# failover_tests.cmake: peers and zshare-events fail over from a killed broker to a standby on the same PostgreSQL
# database (a throw-away cluster the test starts; it skips, exit 77, only when no PostgreSQL is installed).
# Included from tests/integration/CMakeLists.txt.
add_test(NAME failover
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/failover_test.py
                 --broker-bin $<TARGET_FILE:zshare-broker> --peer-bin $<TARGET_FILE:zshare-peer>
                 --events-bin $<TARGET_FILE:zshare-events>)
set_tests_properties(failover PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 180
                     SKIP_RETURN_CODE 77)
# Two live brokers on one PostgreSQL database (several brokers serving one network): one event stream, races,
# retries that move, sessions of a killed broker ended by its lease, every operation logged once.
add_test(NAME cluster
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/cluster_test.py
                 --broker-bin $<TARGET_FILE:zshare-broker> --rpclog-bin $<TARGET_FILE:zshare-rpclog>)
set_tests_properties(cluster PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 180
                     SKIP_RETURN_CODE 77)
