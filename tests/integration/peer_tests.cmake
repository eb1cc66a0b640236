# peer_tests.cmake: zshare-peer's process tests, included from tests/integration/CMakeLists.txt.
# shell_scenario.py drives real `zshare-peer shell` processes against a real zshare-broker on free ports.
add_test(NAME shell_scenario
  COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/shell_scenario.py
          --broker-bin $<TARGET_FILE:zshare-broker> --peer-bin $<TARGET_FILE:zshare-peer>)
set_tests_properties(shell_scenario PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 120)
