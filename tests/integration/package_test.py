#!/usr/bin/env python3
# package_test.py: `make package`'s .deb, built by cpack from this build tree into a temporary folder, holds what
# `cmake --install --prefix /usr` installs and nothing else; its control fields name the licence, the maintainer
# and the dependencies (dpkg-shlibdeps' and adduser); extracted into a scratch root (dpkg-deb -x) every program
# prints its --version and every unit runs /usr/bin's program as the user zshare. The maintainer scripts run
# against stub commands (adduser, getent, systemctl, deb-systemd-helper ... recording their arguments; nothing on
# this machine changes): postinst creates the system user zshare and enables and starts no service; prerm stops
# them on removal only; postrm keeps the user. Then `systemd-analyze verify` passes on the units in the scratch
# root and `systemd-analyze security --offline=true` rates each OK or better (skipped, with the reason printed,
# only when systemd-analyze is missing).
import argparse
import glob
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

PROGRAMS = ["zshare-broker", "zshare-peer", "zshare-timesvc", "zshare-rpclog", "zshare-events", "zshare-relay",
            "zshare-harness"]
# The units of examples/systemd (each a program's service; the peer's a template) and the example configs.
UNITS = ["zshare-broker.service", "zshare-rpclog.service", "zshare-timesvc.service", "zshare-relay.service",
         "zshare-peer-serve@.service"]
CONFIGS = ["broker.toml", "peer.toml", "relay.toml", "rpclog.toml", "timesvc.toml"]
GOOD_EXPOSURE = ("OK", "SAFE", "PERFECT")  # systemd-analyze's words below "MEDIUM"
# Commands a maintainer script could change users or services with; each is a recording stub on PATH.
STUBS = ["adduser", "addgroup", "useradd", "groupadd", "deluser", "delgroup", "userdel", "groupdel", "usermod",
         "getent", "systemctl", "deb-systemd-helper", "deb-systemd-invoke", "invoke-rc.d", "update-rc.d",
         "systemd-sysusers", "systemd-tmpfiles"]
# The sandbox issue 14 asks of every unit (each line exactly; ProtectSystem=strict leaves only the unit's
# State/LogsDirectory writable).
HARDENING = ["NoNewPrivileges=yes", "CapabilityBoundingSet=", "UMask=0077", "ProtectSystem=strict",
             "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes", "ProtectKernelTunables=yes",
             "ProtectKernelModules=yes", "ProtectKernelLogs=yes", "ProtectControlGroups=yes", "ProtectClock=yes",
             "ProtectHostname=yes", "RestrictNamespaces=yes",
             "LockPersonality=yes", "MemoryDenyWriteExecute=yes", "RestrictRealtime=yes", "RestrictSUIDSGID=yes",
             "SystemCallFilter=@system-service", "SystemCallArchitectures=native"]
PASSED = []


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    PASSED.append(what)


def run(cmd, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def project_version(source_dir):
    with open(os.path.join(source_dir, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"^project\(zshare\s+VERSION\s+([0-9][0-9.]*)", f.read(), re.M)
    check(m is not None, "the top-level CMakeLists.txt has project(zshare VERSION x.y.z)")
    return m.group(1)


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        out.update(os.path.relpath(os.path.join(d, n), root) for n in names)
    return out


def build_deb(cpack, build, tmp):
    out = os.path.join(tmp, "out")
    r = run([cpack, "--config", os.path.join(build, "CPackConfig.cmake"), "-G", "DEB", "-B", out])
    check(r.returncode == 0, "cpack -G DEB exits 0: %s %s" % (r.stdout[-3000:], r.stderr[-3000:]))
    debs = glob.glob(os.path.join(out, "*.deb"))
    check(len(debs) == 1, "cpack makes one .deb: %s" % debs)
    return debs[0]


def check_metadata(deb, version):
    info = run(["dpkg-deb", "-I", deb])
    check(info.returncode == 0, "dpkg-deb -I reads the package: %s" % info.stderr)
    fields = {}
    for line in info.stdout.splitlines():
        m = re.match(r"^ ([A-Za-z-]+): (.*)$", line)
        if m:
            fields[m.group(1)] = m.group(2)
    check(fields.get("Package") == "zshare", "Package: zshare (%r)" % fields.get("Package"))
    check(fields.get("Version") == version, "Version: %s (%r)" % (version, fields.get("Version")))
    check(fields.get("License") == "MPL-2.0", "dpkg-deb -I shows License: MPL-2.0 (%r)" % fields.get("License"))
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    check(fields.get("Architecture") == arch, "Architecture: %s (%r)" % (arch, fields.get("Architecture")))
    check(re.fullmatch(r".+ <[^@ ]+@[^> ]+>", fields.get("Maintainer", "")) is not None,
          "a Maintainer with an address (%r)" % fields.get("Maintainer"))
    check(len(fields.get("Description", "")) > 10 and re.search(r"^  \S", info.stdout, re.M) is not None,
          "a Description with a synopsis and a long description")
    depends = [d.strip().split(" ")[0] for d in fields.get("Depends", "").split(",")]
    for pkg in ("adduser", "python3", "libc6", "libzmq5", "libsqlite3-0", "libssl3"):
        check(pkg in depends, "Depends names %s (dpkg-shlibdeps' and ours): %s" % (pkg, fields.get("Depends")))
    for script in ("postinst", "prerm", "postrm"):
        check(re.search(r"^\s+\d+ bytes,\s+\d+ lines\s+\*\s+%s\s+#!/bin/sh$" % script, info.stdout, re.M)
              is not None, "the control archive holds an executable /bin/sh %s" % script)


def check_contents(deb, cmake, build, tmp, root):
    listing = run(["dpkg-deb", "-c", deb])
    check(listing.returncode == 0, "dpkg-deb -c lists the package")
    for line in listing.stdout.splitlines():
        cols = line.split()
        check(cols[1] == "root/root", "every file belongs to root/root: %s" % line)
        check(cols[5] == "./" or cols[5].startswith("./usr/"), "everything is under /usr: %s" % line)
    r = run(["dpkg-deb", "-x", deb, root])
    check(r.returncode == 0, "dpkg-deb -x unpacks into a scratch root: %s" % r.stderr)
    packaged = {os.path.relpath(p, "usr") for p in files_under(root)}

    prefix = os.path.join(tmp, "prefix")
    r = run([cmake, "--install", build, "--prefix", prefix])
    check(r.returncode == 0, "cmake --install into a scratch prefix exits 0: %s" % r.stderr[-2000:])
    installed = files_under(prefix)
    check(packaged == installed, "the .deb holds what cmake --install installs; only in the .deb: %s, only "
          "installed: %s" % (sorted(packaged - installed), sorted(installed - packaged)))
    check("share/doc/zshare/LICENSE" in packaged, "the licence is in /usr/share/doc/zshare/LICENSE")


def check_programs(root, version):
    bindir = os.path.join(root, "usr/bin")
    check(sorted(os.listdir(bindir)) == sorted(PROGRAMS), "/usr/bin holds the seven programs: %s"
          % sorted(os.listdir(bindir)))
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}  # no build tree, no LD_LIBRARY_PATH: the system's libraries
    for p in PROGRAMS:
        r = run([os.path.join(bindir, p), "--version"], env=env, cwd=root, timeout=30)
        check(r.returncode == 0 and r.stderr == "", "%s --version exits 0, quietly: %d %r" % (p, r.returncode,
                                                                                               r.stderr))
        check(re.fullmatch(r"%s %s( \(git [0-9a-f]{7,40}\))?\n" % (re.escape(p), re.escape(version)), r.stdout)
              is not None, "the packaged %s --version prints '%s %s': %r" % (p, p, version, r.stdout))


def unit_lines(path, key):
    with open(path, encoding="utf-8") as f:
        return [line.split("=", 1)[1].strip() for line in f if line.startswith(key + "=")]


def check_units(root, source_dir):
    unitdir = os.path.join(root, "usr/lib/systemd/system")
    sources = sorted(n for n in os.listdir(os.path.join(source_dir, "examples/systemd")) if n.endswith(".service"))
    check(sources == sorted(UNITS), "examples/systemd has the broker, rpclog, timesvc, relay and peer-serve units: %s"
          % sources)
    check(sorted(os.listdir(unitdir)) == sources, "/usr/lib/systemd/system holds every unit of examples/systemd")
    check(not os.path.exists(os.path.join(root, "etc")), "the package enables nothing (no /etc/systemd links)")
    for name in sources:
        path = os.path.join(unitdir, name)
        execs = unit_lines(path, "ExecStart")
        check(len(execs) == 1, "%s has one ExecStart" % name)
        program = execs[0].split()[0]
        check(program.startswith("/usr/bin/zshare-") and os.access(root + program, os.X_OK),
              "%s runs a packaged program from the /usr prefix: %s" % (name, program))
        check(unit_lines(path, "User") == ["zshare"] and unit_lines(path, "Group") == ["zshare"],
              "%s runs as the system user zshare, the one postinst creates" % name)
        check(unit_lines(path, "DynamicUser") == [], "%s does not mix in DynamicUser" % name)
        lines = set(open(path, encoding="utf-8").read().splitlines())
        check(not [h for h in HARDENING if h not in lines], "%s sets every hardening line of issue 14; missing: %s"
              % (name, [h for h in HARDENING if h not in lines]))
        families = unit_lines(path, "RestrictAddressFamilies")
        if name == "zshare-relay.service":  # no libzmq, no local socket: TCP only
            check(families == ["AF_INET AF_INET6"], "%s allows Internet sockets only: %s" % (name, families))
        else:
            check(len(families) == 1 and {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(families[0].split())
                  <= {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"},
                  "%s allows Internet and local sockets (and netlink: libzmq's getifaddrs) only: %s"
                  % (name, families))
        check("WantedBy=multi-user.target" in open(path, encoding="utf-8").read(),
              "%s can be enabled (WantedBy=multi-user.target)" % name)
    state = {n: unit_lines(os.path.join(unitdir, n), "StateDirectory") for n in sources}
    check(state["zshare-broker.service"] == ["zshare"], "the broker's StateDirectory is /var/lib/zshare")
    check(state["zshare-peer-serve@.service"] == ["zshare/peer-%i"],
          "a peer's keys live in its StateDirectory, /var/lib/zshare/peer-NAME")
    check(unit_lines(os.path.join(unitdir, "zshare-rpclog.service"), "LogsDirectory") == ["zshare"],
          "the logger's LogsDirectory is /var/log/zshare")
    check(state["zshare-relay.service"] == [], "the relay keeps no state (no StateDirectory)")
    # Secrets reach their service as credentials: /etc/zshare keeps the root-owned 0600 files.
    for name, credential, option in (("zshare-broker.service", "broker.key", "--key"),
                                     ("zshare-relay.service", "relay.secret", "--secret-file")):
        path = os.path.join(unitdir, name)
        check(unit_lines(path, "LoadCredential") == ["%s:/etc/zshare/%s" % (credential, credential)],
              "%s loads /etc/zshare/%s as the credential %s" % (name, credential, credential))
        check(("%s ${CREDENTIALS_DIRECTORY}/%s" % (option, credential)) in unit_lines(path, "ExecStart")[0],
              "%s hands the credential to %s" % (name, option))
    # The example configs write where the units let them (ProtectSystem=strict leaves only these writable).
    configs = os.path.join(root, "usr/share/doc/zshare/examples/config")
    check(sorted(os.listdir(configs)) == sorted(CONFIGS), "the example configs are %s: %s"
          % (CONFIGS, sorted(os.listdir(configs))))
    broker_toml = open(os.path.join(configs, "broker.toml"), encoding="utf-8").read()
    rpclog_toml = open(os.path.join(configs, "rpclog.toml"), encoding="utf-8").read()
    check(re.search(r'^db = "/var/lib/zshare/[^/"]+"', broker_toml, re.M) is not None,
          "broker.toml's db is in the broker unit's StateDirectory")
    check(re.search(r'^log = "/var/log/zshare/[^/"]+"', rpclog_toml, re.M) is not None,
          "rpclog.toml's log is in the rpclog unit's LogsDirectory")
    return unitdir, sources


def check_systemd_analyze(root, unitdir, sources):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("package: SKIPPED systemd-analyze verify/security: systemd-analyze is not installed")
        return
    # verify in the scratch root: ExecStart's /usr/bin/zshare-* resolves there (--recursive-errors=no: the root has
    # none of the system's units, e.g. sysinit.target). A template is checked through an instance.
    names = [n.replace("@.service", "@alice.service") for n in sources]
    r = run([analyze, "verify", "--recursive-errors=no", "--root=" + root] + names, cwd=root)
    check(r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "",
          "systemd-analyze verify --root passes on the packaged units, without a warning: %s %s"
          % (r.stdout, r.stderr))
    for name in sources:
        r = run([analyze, "security", "--offline=true", "--no-pager", os.path.join(unitdir, name)], cwd=root)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", r.stdout)
        check(m is not None, "systemd-analyze security --offline=true rates %s: %s %s" % (name, r.stdout[-500:],
                                                                                       r.stderr))
        check(m.group(2) in GOOD_EXPOSURE, "%s's exposure is OK or better: %s %s" % (name, m.group(1), m.group(2)))
        print("package: %s exposure %s %s" % (name, m.group(1), m.group(2)))


class Scripts:
    """The package's maintainer scripts, run with recording stubs first on PATH."""

    def __init__(self, deb, tmp):
        self.dir = os.path.join(tmp, "control")
        r = run(["dpkg-deb", "-e", deb, self.dir])
        check(r.returncode == 0, "dpkg-deb -e extracts the control archive: %s" % r.stderr)
        self.stubs = os.path.join(tmp, "stubs")
        os.makedirs(self.stubs)
        self.log = os.path.join(tmp, "calls.log")
        self.systemd_run = os.path.join(tmp, "run-systemd-system")  # stands for /run/systemd/system
        for name in STUBS:
            path = os.path.join(self.stubs, name)
            with open(path, "w", encoding="utf-8") as f:
                # getent answers as the scenario says (2: no such user); every other stub succeeds.
                rc = '${STUB_GETENT_RC:-2}' if name == "getent" else "0"
                f.write('#!/bin/sh\nprintf "%%s\\n" "%s $*" >> "$STUB_LOG"\nexit %s\n' % (name, rc))
            os.chmod(path, 0o755)
        for script in ("postinst", "prerm", "postrm"):
            text = open(os.path.join(self.dir, script), encoding="utf-8").read()
            check(stat.S_IMODE(os.stat(os.path.join(self.dir, script)).st_mode) == 0o755,
                  "%s is mode 0755" % script)
            check(re.search(r"/(usr/)?s?bin/(%s)\b" % "|".join(map(re.escape, STUBS)), text) is None,
                  "%s calls user and service tools through PATH only (the stubs take their place)" % script)
            check("/run/systemd/system" in text, "%s asks /run/systemd/system whether systemd runs" % script)
            # The copy that runs asks a folder of this test instead, so both answers can be tried.
            with open(os.path.join(tmp, script), "w", encoding="utf-8") as f:
                f.write(text.replace("/run/systemd/system", self.systemd_run))
            os.chmod(os.path.join(tmp, script), 0o755)
        self.tmp = tmp

    def run(self, script, args, systemd=True, user_exists=False, dpkg_root=None):
        if systemd:
            os.makedirs(self.systemd_run, exist_ok=True)
        elif os.path.isdir(self.systemd_run):
            os.rmdir(self.systemd_run)
        open(self.log, "w").close()
        env = {"PATH": self.stubs + ":/usr/bin:/bin", "STUB_LOG": self.log, "STUB_GETENT_RC": "0" if user_exists
               else "2", "DPKG_MAINTSCRIPT_PACKAGE": "zshare", "DPKG_MAINTSCRIPT_NAME": script, "LANG": "C"}
        if dpkg_root is not None:
            env["DPKG_ROOT"] = dpkg_root
        r = run([os.path.join(self.tmp, script)] + args, env=env, cwd=self.tmp, timeout=30)
        check(r.returncode == 0, "%s %s exits 0: %s %s" % (script, " ".join(args), r.stdout, r.stderr))
        calls = [line.split() for line in open(self.log, encoding="utf-8").read().splitlines()]
        for call in calls:  # never, in any scenario
            what = "%s %s %s" % (script, " ".join(args), " ".join(call))
            check(not (call[0] in ("systemctl", "deb-systemd-invoke", "invoke-rc.d")
                       and set(call[1:]) & {"enable", "start", "restart", "reload-or-restart", "try-restart",
                                            "reenable", "unmask"}), "no service is enabled or started: " + what)
            check(not (call[0] == "deb-systemd-helper" and set(call[1:]) & {"enable", "reenable", "unmask"}),
                  "no unit is enabled: " + what)
            check(call[0] not in ("deluser", "delgroup", "userdel", "groupdel", "usermod", "update-rc.d"),
                  "no user is removed or changed: " + what)
        return calls


def check_maintainer_scripts(deb, tmp):
    s = Scripts(deb, tmp)
    units = UNITS

    calls = s.run("postinst", ["configure"])  # a first install, systemd running
    adduser = [c for c in calls if c[0] in ("adduser", "useradd", "addgroup", "groupadd", "systemd-sysusers")]
    check(len(adduser) == 1 and adduser[0][0] == "adduser", "postinst creates the user with one adduser: %s"
          % calls)
    a = adduser[0]
    check(a[-1] == "zshare" and {"--system", "--group", "--no-create-home"} <= set(a),
          "adduser --system --group --no-create-home ... zshare: %s" % a)
    check("--home" in a and a[a.index("--home") + 1] == "/var/lib/zshare",
          "the user's home is the units' StateDirectory, /var/lib/zshare: %s" % a)
    check(["getent", "passwd", "zshare"] in calls, "postinst asks whether the user zshare exists first")
    check(["systemctl", "--system", "daemon-reload"] in calls, "postinst reloads a running systemd")
    check(all(c[:2] == ["deb-systemd-helper", "update-state"] for c in calls if c[0] == "deb-systemd-helper")
          and sorted(c[2] for c in calls if c[0] == "deb-systemd-helper") == sorted(units),
          "postinst only records each unit's state with deb-systemd-helper (update-state): %s" % calls)
    check([c for c in calls if c[0] == "systemctl"] == [["systemctl", "--system", "daemon-reload"]],
          "postinst's only systemctl call is daemon-reload: %s" % calls)

    calls = s.run("postinst", ["configure", "0.1.0"], user_exists=True)  # an upgrade: the user is there
    check(not any(c[0] == "adduser" for c in calls), "postinst keeps an existing user zshare: %s" % calls)
    calls = s.run("postinst", ["configure"], systemd=False)
    check(any(c[0] == "adduser" for c in calls) and not any(c[0] == "systemctl" for c in calls),
          "without a running systemd postinst still creates the user and calls no systemctl: %s" % calls)
    calls = s.run("postinst", ["configure"], dpkg_root="/tmp/elsewhere")
    check(not any(c[0] == "systemctl" for c in calls), "under DPKG_ROOT postinst leaves the running systemd be")
    calls = s.run("postinst", ["abort-upgrade", "0.1.0"])
    check(not any(c[0] == "adduser" for c in calls), "postinst abort-upgrade creates no user")

    calls = s.run("prerm", ["remove"])
    stops = [c for c in calls if c[0] == "systemctl"]
    check(len(stops) == 1 and stops[0][1:3] == ["--system", "stop"]
          and {"zshare-broker.service", "zshare-rpclog.service", "zshare-timesvc.service", "zshare-relay.service",
               "zshare-peer-serve@*.service"} <= set(stops[0]),
          "prerm remove stops every service and instance: %s" % calls)
    check(s.run("prerm", ["upgrade", "0.1.0"]) == [], "prerm upgrade leaves the services running")
    check(s.run("prerm", ["remove"], systemd=False) == [], "prerm without a running systemd calls nothing")

    calls = s.run("postrm", ["remove"])
    check(calls == [["systemctl", "--system", "daemon-reload"]], "postrm remove only reloads systemd: %s" % calls)
    calls = s.run("postrm", ["purge"])
    check(sorted(c[2] for c in calls if c[:2] == ["deb-systemd-helper", "purge"]) == sorted(units)
          and ["systemctl", "--system", "daemon-reload"] in calls,
          "postrm purge drops the units' links and state, and reloads systemd: %s" % calls)
    check(s.run("postrm", ["upgrade", "0.1.0"]) == [], "postrm upgrade calls nothing")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cmake", required=True)
    parser.add_argument("--cpack", required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--source-dir", required=True)
    args = parser.parse_args()
    src, build = os.path.abspath(args.source_dir), os.path.abspath(args.build_dir)
    version = project_version(src)
    with tempfile.TemporaryDirectory(prefix="zshare-package-") as tmp:
        deb = build_deb(args.cpack, build, tmp)
        check(os.path.basename(deb).startswith("zshare_%s_" % version), "the file is zshare_%s_ARCH.deb: %s"
              % (version, os.path.basename(deb)))
        check_metadata(deb, version)
        root = os.path.join(tmp, "root")
        check_contents(deb, args.cmake, build, tmp, root)
        check_programs(root, version)
        unitdir, sources = check_units(root, src)
        check_maintainer_scripts(deb, tmp)
        check_systemd_analyze(root, unitdir, sources)
    print("package: %d checks passed" % len(PASSED))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAIL: %s" % e, file=sys.stderr)
        print("package: %d checks passed before the failure" % len(PASSED), file=sys.stderr)
        sys.exit(1)
