#!/bin/sh
# argparse_help.sh ARGS...: runs $ZSHARE_MAN_PROGRAM (a Python argparse program: zshare-harness) with ARGS, its
# --help reshaped for help2man, which looks for one "Usage:" line (argparse prints "usage:" wrapped over indented
# lines), joins the description's indented example lines into one paragraph unless blank lines part them, and
# starts OPTIONS at "Options:" (argparse: "options:"). Everything else passes through unchanged. Used by
# man/CMakeLists.txt.
out=$("$ZSHARE_MAN_PROGRAM" "$@") || exit
printf '%s\n' "$out" | awk '
  NR == 1 && sub(/^usage:/, "Usage:") { usage = $0; next }
  usage != "" && /^ +[^ ]/ { sub(/^ +/, " "); usage = usage $0; next }
  usage != "" { print usage; usage = "" }
  /^[^ ].*:$/ { options = 1 }
  /^(options|optional arguments):$/ { print "Options:"; next }
  !options && /^  +[^ ]/ { print; print ""; next }
  { print }
  END { if (usage != "") print usage }'
