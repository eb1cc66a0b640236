# examples/ stays working: the Python search client against a real broker, and the example config files.
add_test(NAME examples COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/examples_test.py
  --broker-bin $<TARGET_FILE:zshare-broker> --bin-dir ${PROJECT_BINARY_DIR} --examples ${PROJECT_SOURCE_DIR}/examples)
set_tests_properties(examples PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 60)

# `make demo` keeps working: tools/demo.sh runs its whole network (it fails when carol's download is not the
# album alice and bob publish, or when any step it waits on does not come).
add_test(NAME demo COMMAND bash ${PROJECT_SOURCE_DIR}/tools/demo.sh ${PROJECT_BINARY_DIR}
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(demo PROPERTIES ENVIRONMENT NO_COLOR=1 TIMEOUT 120)
