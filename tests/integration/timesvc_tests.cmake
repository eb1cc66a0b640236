# timesvc_tests.cmake: the time service's process test (python3-zeep against a real zshare-timesvc) and the
# check that schemas/timesvc.wsdl equals the WSDL soapcpp2 generates from schemas/timesvc.h in this build.
add_test(NAME timesvc
         COMMAND ${ZSHARE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/timesvc_test.py
                 --timesvc-bin $<TARGET_FILE:zshare-timesvc>)
set_tests_properties(timesvc PROPERTIES ENVIRONMENT PYTHONPATH=${ZSHARE_TEST_PYTHONPATH} TIMEOUT 120)

# Fails when the header changed and the committed WSDL was not refreshed: build the target
# timesvc-update-wsdl and commit schemas/timesvc.wsdl.
add_test(NAME timesvc_wsdl_in_sync
         COMMAND ${CMAKE_COMMAND} -E compare_files
                 $<TARGET_PROPERTY:zshare_timesvc,ZSHARE_GENERATED_WSDL> ${PROJECT_SOURCE_DIR}/schemas/timesvc.wsdl)
set_tests_properties(timesvc_wsdl_in_sync PROPERTIES TIMEOUT 30)
