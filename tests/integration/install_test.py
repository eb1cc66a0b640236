#!/usr/bin/env python3
# install_test.py: `cmake --install <build> --prefix <temp>` installs what issue 14 lists and nothing else: the seven
# programs in bin/ (no tests, benches or fuzzers), the systemd units, the example configs and scenarios, the
# schemas, zshare-harness's scripts, a gzipped man page per program and zshare-peer's bash completion; then every
# installed program's --version prints one line, its name and the version of the top-level CMakeLists.txt's
# project() line (plus the git commit of a build from git); every man page is roff naming its program and holding
# every option (and subcommand) of the installed program's --help, and renders without a warning; the completion,
# sourced in bash, completes subcommands, options, choices and paths, and offers exactly the options --help lists.
import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile

PROGRAMS = ["zshare-broker", "zshare-peer", "zshare-timesvc", "zshare-rpclog", "zshare-events", "zshare-relay",
            "zshare-harness"]
# The units of examples/systemd and the example configs, by name: a file that goes missing from the source tree
# fails here too, not only one that fails to install.
UNITS = ["zshare-broker.service", "zshare-peer-serve@.service", "zshare-relay.service", "zshare-rpclog.service",
         "zshare-timesvc.service"]
CONFIGS = ["broker.toml", "peer.toml", "relay.toml", "rpclog.toml", "timesvc.toml"]
PASSED = []


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    PASSED.append(what)


def project_version(source_dir):
    with open(os.path.join(source_dir, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"^project\(zshare\s+VERSION\s+([0-9][0-9.]*)", f.read(), re.M)
    check(m is not None, "the top-level CMakeLists.txt has project(zshare VERSION x.y.z)")
    return m.group(1)


def cache_value(build_dir, name, default):
    """An install directory as this build was configured (GNUInstallDirs), e.g. CMAKE_INSTALL_BINDIR=bin."""
    with open(os.path.join(build_dir, "CMakeCache.txt"), encoding="utf-8") as f:
        m = re.search(r"^%s:[A-Z]+=(.*)$" % name, f.read(), re.M)
    return m.group(1) if m and m.group(1) else default


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        out.update(os.path.relpath(os.path.join(d, n), root) for n in names)
    return out


def sources(folder, keep=lambda name: True):
    return sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)) and keep(n))


def git_commit_exists(source_dir, commit):
    r = subprocess.run(["git", "-C", source_dir, "rev-parse", "--verify", "--quiet", commit + "^{commit}"],
                       capture_output=True, text=True)
    return r.returncode == 0


def help_options(help_text):
    """The option names of a --help text (CLI11 or argparse): the words starting with '-' of each option line, up
    to its description (two spaces or the next line). An independent reading of --help, not the completion's."""
    names = set()
    for line in help_text.splitlines():
        if re.match(r"\s{2,}-", line):
            head = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
            names.update(re.findall(r"(?<![\w-])(--?[A-Za-z0-9][\w-]*)", head))
    return names


def help_subcommands(help_text):
    """The subcommands CLI11 lists under "Subcommands:"."""
    m = re.search(r"^Subcommands:\n((?:  .*\n?)*)", help_text, re.M)
    return [line.split()[0] for line in m.group(1).splitlines()] if m else []


def run_help(argv, env, cwd):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, cwd=cwd)
    check(r.returncode == 0 and r.stdout, "%s exits 0 with a help text: %d %r" % (" ".join(argv), r.returncode,
                                                                                    r.stderr))
    return r.stdout


def roff_text(name):
    """How help2man (and man/subcommands_h2m.py) writes a word in roff: hyphens escaped."""
    return name.replace("-", "\\-")


def check_man_page(path, program, bin_dir, env, src, build):
    """The installed page of `program`: gzipped roff, .TH naming the program in section 1, a NAME line of its own
    (not help2man's "manual page for"), every option of its --help, every subcommand's section and options, no
    build path, and (with groff) rendered without a warning."""
    with open(path, "rb") as f:
        check(f.read(2) == b"\x1f\x8b", "%s is gzipped" % path)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        page = f.read()
    th = re.search(r'^\.TH +"?([^" ]+)"? +"?1"?', page, re.M)
    check(th is not None and th.group(1).lower() == program, "%s has a .TH line naming %s in section 1: %r"
          % (path, program, th.group(0) if th else page[:200]))
    m = re.search(r"^\.SH NAME\n(.*)$", page, re.M)
    name = r"\\?-".join(map(re.escape, program.split("-")))  # NAME lines write the program's hyphens either way
    check(m is not None and re.match(name + r" \\- \w", m.group(1)) and "manual page for" not in m.group(1),
          "%s has a NAME line 'PROGRAM \\- what it does' from man/%s.h2m: %r" % (path, program, m and m.group(1)))
    check(re.search(r"^\.SH SYNOPSIS$", page, re.M) and re.search(r"^\.SH OPTIONS$", page, re.M) and
          re.search(r"^\.SH \"?SEE ALSO\"?$", page, re.M), "%s has SYNOPSIS, OPTIONS and SEE ALSO" % path)
    check(src not in page and build not in page, "%s names neither the source nor the build tree" % path)
    exe = os.path.join(bin_dir, program)
    top = run_help([exe, "--help"], env, bin_dir)
    options = help_options(top)
    check(len(options) >= 3, "%s --help lists options: %s" % (program, sorted(options)))
    missing = sorted(o for o in options if roff_text(o) not in page)
    check(not missing, "%s documents every option of %s --help; missing: %s" % (path, program, missing))
    for sub in help_subcommands(top):
        check(re.search(r'^\.SS "%s"$' % re.escape(roff_text(sub)), page, re.M),
              "%s has a section for the subcommand %s" % (path, sub))
        sub_options = help_options(run_help([exe, sub, "--help"], env, bin_dir))
        missing = sorted(o for o in sub_options if roff_text(o) not in page)
        check(not missing, "%s documents every option of %s %s --help; missing: %s" % (path, program, sub, missing))
    if shutil.which("groff"):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=page, capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 0 and r.stderr == "", "groff renders %s without a warning: %r" % (path, r.stderr[:500]))
    return page


def complete(script, words, env, cwd):
    """What the completion `script` offers for the command line `words` (the last one being completed), with
    COMP_WORDS and COMP_CWORD set as bash sets them, through the function `complete -p zshare-peer` names."""
    program = r"""
. "$1" || exit 9
spec=$(complete -p zshare-peer) || exit 8
[[ $spec =~ -F\ ([^ ]+) ]] || exit 7
shift
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
"${BASH_REMATCH[1]}" zshare-peer "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""
    r = subprocess.run(["bash", "-c", program, "bash", script] + words, capture_output=True, text=True, timeout=30,
                       env=env, cwd=cwd)
    check(r.returncode == 0 and r.stderr == "", "bash sources %s and completes %r: %d %r" % (script, words,
                                                                                             r.returncode, r.stderr))
    return sorted(w for w in r.stdout.split("\n") if w)


def check_completion(script, peer, env, scratch):
    """The installed completion of zshare-peer, run with no zshare-peer on PATH (its tables are built in)."""
    with open(script, encoding="utf-8") as f:
        text = f.read()
    check(re.search(r"^_zshare_peer_subcommands=\S", text, re.M) and "declare -gA _zshare_peer_opts=" in text,
          "%s holds the option tables generated at build time" % script)
    bare = dict(env, PATH="/usr/bin:/bin")
    check(shutil.which("zshare-peer", path=bare["PATH"]) is None, "no zshare-peer on the test's PATH")
    os.makedirs(os.path.join(scratch, "shared"))
    open(os.path.join(scratch, "share.txt"), "w").close()

    def offers(words, expected, what):
        got = complete(script, words, bare, scratch)
        check(got == sorted(expected), "%s: `%s<Tab>` offers %s, not %s" % (what, " ".join(words), expected, got))

    offers(["zshare-peer", "se"], ["search", "serve"], "subcommands")
    offers(["zshare-peer", "get", "--wi"], ["--window"], "a subcommand's option")
    offers(["zshare-peer", "--broker-k"], ["--broker-key"], "a global option before the subcommand")
    offers(["zshare-peer", "get", "--broker-k"], ["--broker-key"], "a global option after the subcommand")
    offers(["zshare-peer", "--timeout", "5", "list-"], ["list-content", "list-users"], "past an option's value")
    offers(["zshare-peer", "serve", "--watch", ""], ["auto", "inotify", "poll"], "the choices of --watch")
    offers(["zshare-peer", "serve", "--watch", "=", "in"], ["inotify"], "the choices of --watch=")
    offers(["zshare-peer", "get", "--window", ""], [], "a number: nothing to offer")
    offers(["zshare-peer", "serve", "--share", "sha"], ["shared"], "--share takes a folder")
    offers(["zshare-peer", "get", "-o", "sha"], ["share.txt", "shared"], "-o takes a file")
    offers(["zshare-peer", "--key-dir", "sha"], ["shared"], "--key-dir takes a folder")
    offers(["zshare-peer", "hash", "sha"], ["share.txt", "shared"], "hash takes files")

    # No drift: after `zshare-peer SUB -` exactly the options of `zshare-peer SUB --help` and of `zshare-peer --help`.
    top = run_help([peer, "--help"], env, scratch)
    global_options = help_options(top)
    subcommands = help_subcommands(top)
    check(len(subcommands) >= 5 and "get" in subcommands, "zshare-peer --help lists its subcommands: %s" % subcommands)
    offers(["zshare-peer", ""], subcommands, "every subcommand")
    offers(["zshare-peer", "-"], global_options, "every global option")
    for sub in subcommands:
        sub_options = help_options(run_help([peer, sub, "--help"], env, scratch))
        offers(["zshare-peer", sub, "-"], sorted(global_options | sub_options), "every option of %s" % sub)

    # The options the script says take a path (its only hand-written list) are all in --help.
    r = subprocess.run(["bash", "-c", '. "$1" && for k in "${!_zshare_peer_paths[@]}"; do echo "$k"; done', "bash",
                        script], capture_output=True, text=True, timeout=30, env=bare)
    keys = [k.split(" ", 1) for k in r.stdout.splitlines()]
    check(r.returncode == 0 and len(keys) >= 5, "the completion lists the options that take a path: %r" % r.stdout)
    for scope, option in keys:
        if option != "@":
            known = global_options if scope == "-" else help_options(run_help([peer, scope, "--help"], env, scratch))
            check(option in known, "the path option %s %s of the completion is in --help" % (scope, option))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cmake", required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--source-dir", required=True)
    args = parser.parse_args()
    src, build = os.path.abspath(args.source_dir), os.path.abspath(args.build_dir)
    version = project_version(src)
    bindir = cache_value(build, "CMAKE_INSTALL_BINDIR", "bin")
    datadir = cache_value(build, "CMAKE_INSTALL_DATADIR", "share")
    docdir = cache_value(build, "CMAKE_INSTALL_DOCDIR", os.path.join(datadir, "doc", "zshare"))
    mandir = cache_value(build, "CMAKE_INSTALL_MANDIR", os.path.join(datadir, "man"))
    completion = os.path.join(datadir, "bash-completion/completions/zshare-peer")

    expected = {os.path.join(bindir, p) for p in PROGRAMS}
    units = sources(os.path.join(src, "examples/systemd"), lambda n: n.endswith(".service"))
    check(units == sorted(UNITS), "examples/systemd holds the units %s: %s" % (UNITS, units))
    configs = sources(os.path.join(src, "examples/config"))
    check(configs == sorted(CONFIGS), "examples/config holds the configs %s: %s" % (CONFIGS, configs))
    expected |= {os.path.join("lib/systemd/system", n) for n in units}
    for sub in ("config", "scenarios"):
        expected |= {os.path.join(docdir, "examples", sub, n) for n in sources(os.path.join(src, "examples", sub))}
    expected |= {os.path.join(datadir, "zshare/schemas", n) for n in sources(os.path.join(src, "schemas"))}
    expected.add(os.path.join(docdir, "LICENSE"))
    harness = os.path.join(datadir, "zshare/harness")
    expected |= {os.path.join(harness, n)
                 for n in sources(os.path.join(src, "tools/harness"), lambda n: n.endswith(".py"))}
    expected |= {os.path.join(harness, n) for n in ("VERSION", "SCENARIOS.md")}
    expected |= {os.path.join(harness, n) for n in ("pg_cluster.py", "zshare_testlib.py")}  # --store postgres
    expected |= {os.path.join(mandir, "man1", p + ".1.gz") for p in PROGRAMS}
    expected.add(completion)
    check(any(p.endswith(".toml") for p in expected) and any(p.endswith(".service") for p in expected),
          "the source tree has example configs and systemd units to expect")

    with tempfile.TemporaryDirectory(prefix="zshare-install-") as prefix:
        r = subprocess.run([args.cmake, "--install", build, "--prefix", prefix], capture_output=True, text=True,
                           timeout=120)
        check(r.returncode == 0, "cmake --install exits 0: %s %s" % (r.stdout[-2000:], r.stderr[-2000:]))
        installed = files_under(prefix)
        missing, extra = sorted(expected - installed), sorted(installed - expected)
        check(not missing, "every expected file is installed; missing: %s" % missing)
        check(not extra, "nothing else is installed (no test program, bench or fuzzer): %s" % extra)
        for p in PROGRAMS:
            check(os.access(os.path.join(prefix, bindir, p), os.X_OK), "%s is executable" % p)
        launcher = open(os.path.join(prefix, bindir, "zshare-harness"), encoding="utf-8").read()
        check(src not in launcher and build not in launcher,
              "the installed zshare-harness names neither the source nor the build tree")

        # --version: one line on stdout, exit 0, the same version text for all seven programs.
        texts = set()
        env = dict(os.environ, PATH="/usr/bin:/bin")  # the installed programs only: no build tree on PATH
        env.pop("ZSHARE_HARNESS_VERSION_FILE", None)
        for p in PROGRAMS:
            r = subprocess.run([os.path.join(prefix, bindir, p), "--version"], capture_output=True, text=True,
                               timeout=30, env=env, cwd=prefix)
            check(r.returncode == 0, "%s --version exits 0: %d %r" % (p, r.returncode, r.stderr))
            check(r.stderr == "", "%s --version writes nothing on stderr: %r" % (p, r.stderr))
            m = re.fullmatch(r"(\S+) (\S+)(?: \(git ([0-9a-f]{7,40})\))?\n", r.stdout)
            check(m is not None, "%s --version prints one line 'NAME VERSION [(git COMMIT)]': %r" % (p, r.stdout))
            check(m.group(1) == p, "%s --version names the program: %r" % (p, r.stdout))
            check(m.group(2) == version, "%s --version prints version %s: %r" % (p, version, r.stdout))
            if m.group(3) and os.path.exists(os.path.join(src, ".git")):
                check(git_commit_exists(src, m.group(3)), "%s --version names a commit of this repository: %r"
                      % (p, r.stdout))
            texts.add(r.stdout.split(" ", 1)[1])
        check(len(texts) == 1, "all seven programs print the same version text: %s" % sorted(texts))

        pages = {p: check_man_page(os.path.join(prefix, mandir, "man1", p + ".1.gz"), p, os.path.join(prefix, bindir),
                                   env, src, build) for p in PROGRAMS}
        check("\\-\\-broker\\-key" in pages["zshare-peer"], "zshare-peer.1 documents --broker-key")
        check(re.search(r'^\.SS "get"$', pages["zshare-peer"], re.M) and "\\-\\-window" in pages["zshare-peer"],
              "zshare-peer.1 includes the help of its subcommands (get --window)")
        with tempfile.TemporaryDirectory(prefix="zshare-completion-") as scratch:
            check_completion(os.path.join(prefix, completion), os.path.join(prefix, bindir, "zshare-peer"), env,
                             scratch)
            # The source file as it is (no tables) reads them from the zshare-peer on PATH at the first Tab.
            on_path = dict(env, PATH=os.path.join(prefix, bindir) + ":/usr/bin:/bin")
            got = complete(os.path.join(src, "completion/zshare-peer"), ["zshare-peer", "se"], on_path, scratch)
            check(got == ["search", "serve"], "completion/zshare-peer unbuilt completes from zshare-peer --help: %s"
                  % got)
        if os.path.exists(os.path.join(src, ".git")) and subprocess.run(
                ["git", "--version"], capture_output=True).returncode == 0:
            check("(git " in texts.pop(), "a build from a git checkout names its commit")
    check(not os.path.exists(prefix), "the temporary prefix is removed")
    print("install: %d checks passed" % len(PASSED))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAIL: %s" % e, file=sys.stderr)
        print("install: %d checks passed before the failure" % len(PASSED), file=sys.stderr)
        sys.exit(1)
