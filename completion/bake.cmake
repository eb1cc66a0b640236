# cmake -DBASH=... -DSCRIPT=completion/zshare-peer -DPROGRAM=.../zshare-peer -DOUTPUT=... -P bake.cmake
# Writes SCRIPT to OUTPUT with the tables _zshare_peer_parse_help prints for PROGRAM between its GENERATED lines.
execute_process(
  COMMAND ${BASH} -c ". \"$0\" && _zshare_peer_parse_help \"$1\"" ${SCRIPT} ${PROGRAM}
  OUTPUT_VARIABLE tables
  ERROR_VARIABLE errors
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT tables MATCHES "_zshare_peer_subcommands=.*_zshare_peer_opts=")
  message(FATAL_ERROR "could not read the options of ${PROGRAM} --help (exit ${rc}): ${errors}")
endif()
file(READ ${SCRIPT} text)
string(FIND "${text}" "# END GENERATED\n" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${SCRIPT} has no '# END GENERATED' line")
endif()
string(SUBSTRING "${text}" 0 ${at} head)
string(SUBSTRING "${text}" ${at} -1 tail)
file(WRITE ${OUTPUT} "${head}${tables}${tail}")
