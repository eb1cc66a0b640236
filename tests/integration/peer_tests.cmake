# peer_tests.cmake: zshare-peer's process tests, included from tests/integration/CMakeLists.txt.
# shell_scenario.py drives real `zshare-peer shell` processes against a real zshare-broker on free ports.
add_test(NAME shell_scenario
  COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/shell_scenario.py
          --broker-bin $<TARGET_FILE:zshare-broker> --peer-bin $<TARGET_FILE:zshare-peer>)
set_tests_properties(shell_scenario PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 120)
# get_test.py: `zshare-peer get` as a user lives with it: destinations never clobbered (mknod, FIFO, socket,
# existing files, folders, stdout), a full 1 MiB tmpfs (needs root, as CI is), interrupts and resumes, retries,
# progress on a pty, several files, exit codes, the download cap, ZSHARE_HOME.
add_test(NAME get
  COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/get_test.py
          --broker-bin $<TARGET_FILE:zshare-broker> --peer-bin $<TARGET_FILE:zshare-peer>)
set_tests_properties(get PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 240)
# serve_follow_test.py: `zshare-peer serve` follows its folder (inotify and polling) against a real broker: adds,
# writes still open, moves, deletes, rewrites, skipped entries, a burst of 2,000 files, refusals and log lines.
add_test(NAME serve_follow
  COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/serve_follow_test.py
          --broker-bin $<TARGET_FILE:zshare-broker> --peer-bin $<TARGET_FILE:zshare-peer>)
set_tests_properties(serve_follow PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 180)
# content_id_test.py: `zshare-peer hash` against schemas/protocol.md's test-vector tables and tests/pylib/merkle_tree.py
# (an independent Python tree), which must all agree; a missing file among several.
add_test(NAME content_id
  COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/content_id_test.py
          --peer-bin $<TARGET_FILE:zshare-peer> --protocol ${PROJECT_SOURCE_DIR}/schemas/protocol.md)
set_tests_properties(content_id PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 60)
