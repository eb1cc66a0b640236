# timesvc.cmake: gSOAP for zshare: the shared gSOAP environment (zshare_soapenv) and the time-service
# client (zshare_timeclient: stubs generated from schemas/timesvc.h into the build dir + TimeClient).
#
# Why three pieces: libgsoap++ calls a few global functions (SOAP Header/Fault serializers) and reads a
# global `namespaces` table. Each set of stubs lives in its own C++ namespace (soapcpp2 -q: ztcli here,
# ztsrv in timesvc/) and is compiled WITH_NOGLOBAL; the globals come once, from zshare_soapenv, made by
# soapcpp2 from an empty header (gSOAP's documented "env" module). So one binary can link both client and
# server without duplicate symbols. Safe to include more than once and from any directory.
include_guard(GLOBAL)

find_package(PkgConfig REQUIRED)
if(NOT TARGET PkgConfig::GSOAP)
  pkg_check_modules(GSOAP REQUIRED IMPORTED_TARGET GLOBAL gsoap++)
endif()
find_program(ZSHARE_SOAPCPP2 soapcpp2 REQUIRED)

set(ZSHARE_TIMESVC_HEADER ${CMAKE_CURRENT_LIST_DIR}/../schemas/timesvc.h)
cmake_path(NORMAL_PATH ZSHARE_TIMESVC_HEADER)
set(ZSHARE_TIMESVC_HEADER ${ZSHARE_TIMESVC_HEADER} CACHE INTERNAL "gSOAP header of the time service")

# zshare_soapcpp2(HEADER h OUTDIR d FLAGS f... OUTPUTS o...): runs soapcpp2 at build time when h changes.
# OUTPUTS are file names relative to OUTDIR. Call it in the directory that builds the outputs.
function(zshare_soapcpp2)
  cmake_parse_arguments(A "" "HEADER;OUTDIR" "FLAGS;OUTPUTS" ${ARGN})
  list(TRANSFORM A_OUTPUTS PREPEND ${A_OUTDIR}/ OUTPUT_VARIABLE outputs)
  list(JOIN A_FLAGS " " flags)
  get_filename_component(header_name ${A_HEADER} NAME)
  # soapcpp2 prints a banner and a line per file it writes: kept in soapcpp2.log, shown only when it fails.
  set(log ${A_OUTDIR}/soapcpp2.log)
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${A_OUTDIR}
    COMMAND sh -c "'${ZSHARE_SOAPCPP2}' ${flags} -d '${A_OUTDIR}' '${A_HEADER}' >'${log}' 2>&1 || { cat '${log}'; exit 1; }"
    DEPENDS ${A_HEADER}
    COMMENT "Generating the gSOAP stubs of ${header_name}"
    VERBATIM)
  # Generated code is gSOAP's, not ours: no warnings from it.
  set_source_files_properties(${outputs} PROPERTIES GENERATED TRUE COMPILE_OPTIONS -w)
endfunction()

# The gSOAP environment: global Header/Fault serializers and the global namespaces table.
set(_zshare_env_dir ${PROJECT_BINARY_DIR}/generated/gsoap_env)
file(CONFIGURE OUTPUT ${_zshare_env_dir}/env.h
     CONTENT "// env.h: empty on purpose; soapcpp2 -penv makes the global SOAP Header/Fault code from it.\n")
# One translation unit for envC.cpp and the table: a static library member is linked only when something
# refers to it, and only libgsoap++.so (which comes later on the link line) refers to `namespaces`.
file(CONFIGURE OUTPUT ${_zshare_env_dir}/soapenv.cpp
     CONTENT "// soapenv.cpp: the gSOAP env module (global Header/Fault code) and the one global namespaces table.\n#include \"envC.cpp\"\n#include \"soap.nsmap\"\n")
zshare_soapcpp2(HEADER ${_zshare_env_dir}/env.h OUTDIR ${_zshare_env_dir}
                FLAGS -c++11 -penv -x -L -w
                OUTPUTS envC.cpp envH.h envStub.h soap.nsmap)
set_source_files_properties(${_zshare_env_dir}/envC.cpp PROPERTIES HEADER_FILE_ONLY TRUE)
add_library(zshare_soapenv STATIC ${_zshare_env_dir}/soapenv.cpp ${_zshare_env_dir}/envC.cpp)
set_source_files_properties(${_zshare_env_dir}/soapenv.cpp PROPERTIES COMPILE_OPTIONS -w)
target_include_directories(zshare_soapenv PRIVATE ${_zshare_env_dir})
target_link_libraries(zshare_soapenv PUBLIC PkgConfig::GSOAP)

# The time-service client: stubs in C++ namespace ztcli, plus TimeClient (common/time_client.hpp).
set(_zshare_tc_dir ${PROJECT_BINARY_DIR}/generated/timesvc_client)
zshare_soapcpp2(HEADER ${ZSHARE_TIMESVC_HEADER} OUTDIR ${_zshare_tc_dir}
                FLAGS -c++11 -j -C -x -L -w -qztcli
                OUTPUTS ztcliC.cpp ztcliH.h ztcliStub.h ztcliZshareTimeProxy.cpp ztcliZshareTimeProxy.h)
add_library(zshare_timeclient STATIC
  ${CMAKE_CURRENT_LIST_DIR}/time_client.cpp
  ${_zshare_tc_dir}/ztcliC.cpp
  ${_zshare_tc_dir}/ztcliZshareTimeProxy.cpp)
target_include_directories(zshare_timeclient PRIVATE ${_zshare_tc_dir})
target_compile_definitions(zshare_timeclient PRIVATE WITH_NOGLOBAL)
target_link_libraries(zshare_timeclient PUBLIC zshare zshare_soapenv)
