# harness_tests.cmake: zshare-harness in CI, included from tests/integration/CMakeLists.txt: a random run of
# 8 seeders (24 files, 300 operations, under a minute), the smoke, fault and cluster scenarios of
# examples/scenarios/, each a whole network of real processes on loopback checked end to end
# (tools/harness/SCENARIOS.md).
set(ZSHARE_HARNESS_ARGS
    ${PROJECT_SOURCE_DIR}/tools/harness/zshare_harness.py
    --broker-bin $<TARGET_FILE:zshare-broker> --peer-bin $<TARGET_FILE:zshare-peer>
    --rpclog-bin $<TARGET_FILE:zshare-rpclog> --timesvc-bin $<TARGET_FILE:zshare-timesvc>
    --events-bin $<TARGET_FILE:zshare-events>)
add_test(NAME harness_random
         COMMAND ${ZSHARE_PYTHON} ${ZSHARE_HARNESS_ARGS} --random --peers 8 --files 24 --ops 300 --seconds 40 --seed 7)
set_tests_properties(harness_random PROPERTIES TIMEOUT 120 PROCESSORS 2)
add_test(NAME harness_smoke
         COMMAND ${ZSHARE_PYTHON} ${ZSHARE_HARNESS_ARGS} ${PROJECT_SOURCE_DIR}/examples/scenarios/smoke.zs)
set_tests_properties(harness_smoke PROPERTIES TIMEOUT 120)
# The fault scenario (about 20 s): broker, seeder and logger killed (-9) on a schedule under the random workload.
add_test(NAME harness_faults
         COMMAND ${ZSHARE_PYTHON} ${ZSHARE_HARNESS_ARGS} ${PROJECT_SOURCE_DIR}/examples/scenarios/faults.zs)
set_tests_properties(harness_faults PROPERTIES TIMEOUT 180 PROCESSORS 2)
# The harness's broker client alone, against a broker with a tiny rate limit: RATE LIMITED is waited out.
add_test(NAME harness_client COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/harness_client_test.py
  --broker-bin $<TARGET_FILE:zshare-broker>)
set_tests_properties(harness_client PROPERTIES
  ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH}:${PROJECT_SOURCE_DIR}/tools/harness TIMEOUT 60)
# The cluster scenario (about 30 s of operations): two brokers on one throw-away PostgreSQL database, killed (-9) in
# turn under the random workload; every seeder online at a kill must be served by the other broker within 5 s,
# nothing acknowledged lost or doubled, both brokers' event streams the same. Skipped (77) only when PostgreSQL is
# not installed (tools/install-deps.sh installs it).
add_test(NAME harness_cluster_pg
         COMMAND sh -c "'${ZSHARE_PYTHON}' '${PROJECT_SOURCE_DIR}/tests/pylib/pg_cluster.py' bindir >/dev/null || \
{ echo 'SKIP: no PostgreSQL binaries (initdb, pg_ctl); tools/install-deps.sh installs postgresql'; exit 77; }; \
exec \"$@\"" harness_cluster_pg
                 ${ZSHARE_PYTHON} ${ZSHARE_HARNESS_ARGS} ${PROJECT_SOURCE_DIR}/examples/scenarios/cluster.zs)
set_tests_properties(harness_cluster_pg PROPERTIES TIMEOUT 180 PROCESSORS 2 SKIP_RETURN_CODE 77)
