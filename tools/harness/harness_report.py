# harness_report.py: the run's summary: a table for people (operations, ops/s, transfers, MB/s, p50/p99 latency,
# failures, faults injected, lost, doubled, corrupt, ...) and the same as one JSON object for machines.
import collections

from harness_record import CORRUPT, DOUBLED, LOST


def percentile(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def summarize(record, scenario_name, steps_done, op_seconds, checks, extra):
    transfers = record.transfers
    ok = [t for t in transfers if t["ok"]]
    first_ok = [t for t in ok if not t.get("rerun")]
    clean = [t for t in transfers if t["clean_failure"]]
    reruns = [t for t in transfers if t.get("rerun")]
    total_bytes = sum(t["bytes"] for t in ok)
    busy = sum(t["seconds"] for t in ok)
    kinds = collections.Counter(k for k, _ in record.violations)
    s = {
        "scenario": scenario_name,
        "verdict": "PASS" if not record.violations else "FAIL",
        "operations": steps_done,
        "op_seconds": round(op_seconds, 3),
        "ops_per_s": round(steps_done / op_seconds, 1) if op_seconds > 0 else 0.0,
        "broker_requests": len(record.latencies),
        "requests_by_op": dict(sorted(record.ops_by_name.items())),
        "request_retries": record.retried_requests,
        "latency_p50_ms": round(percentile(record.latencies, 50) * 1000, 2),
        "latency_p99_ms": round(percentile(record.latencies, 99) * 1000, 2),
        "latency_max_ms": round(max(record.latencies) * 1000, 2) if record.latencies else 0.0,
        "transfers": len(transfers),
        "transfers_ok": len(ok),
        "transfers_failed_clean": len(clean),
        "transfers_rerun": len(reruns),
        "transfers_multi_source": sum(1 for t in first_ok if t["sources"] > 1),
        "bytes_downloaded": total_bytes,
        "transfer_mb_per_s": round(total_bytes / busy / 1e6, 2) if busy > 0 else 0.0,
        "transfer_p50_ms": round(percentile([t["seconds"] for t in ok], 50) * 1000, 1),
        "faults_broker": record.faults_of("broker"),
        "faults_seeder": record.faults_of("seeder"),
        "faults_logger": record.faults_of("logger"),
        "seeder_reconnect_max_s": round(max(record.reconnect_times), 2) if record.reconnect_times else None,
        # several brokers: per kill, the slowest seeder's time from the kill until a live broker served it again
        "continue_max_s": round(max(t for _, t, _ in record.continue_times), 2) if record.continue_times else None,
        "continue_times": [{"broker": b, "seconds": round(t, 3), "seeders": n} for b, t, n in record.continue_times],
        "acknowledged_mutations": len(record.acked),
        "unanswered": len(record.unacked),
        "lost": kinds.get(LOST, 0),
        "doubled": kinds.get(DOUBLED, 0),
        "corrupt": kinds.get(CORRUPT, 0),
        "failures": len(record.violations),
        "violations_by_kind": dict(sorted(kinds.items())),
        "violations": ["[%s] %s" % (k, m) for k, m in record.violations[:200]],
    }
    s.update(checks)
    s.update(extra)
    return s


def table(s):
    rows = [("scenario", s["scenario"])]
    if s.get("brokers", 1) > 1 or s.get("store", "sqlite") != "sqlite":
        rows.append(("brokers", "%d on %s" % (s.get("brokers", 1), s.get("store"))))
    rows += [
        ("operations", "%d in %.1f s" % (s["operations"], s["op_seconds"])),
        ("ops/s", "%.1f" % s["ops_per_s"]),
        ("broker requests", "%d (%d resent)" % (s["broker_requests"], s["request_retries"])),
        ("latency p50 / p99", "%.2f ms / %.2f ms (max %.1f ms)" % (s["latency_p50_ms"], s["latency_p99_ms"],
                                                                  s["latency_max_ms"])),
        ("transfers", "%d ok (%d multi-source), %d failed cleanly under faults, %d rerun"
         % (s["transfers_ok"], s["transfers_multi_source"], s["transfers_failed_clean"], s["transfers_rerun"])),
        ("MB/s", "%.2f per get (%.1f MB verified)" % (s["transfer_mb_per_s"], s["bytes_downloaded"] / 1e6)),
        ("faults injected", "broker %d, seeder %d, logger %d%s"
         % (s["faults_broker"], s["faults_seeder"], s["faults_logger"],
            "" if s["seeder_reconnect_max_s"] is None else
            " (seeders back in %.1f s at worst)" % s["seeder_reconnect_max_s"])),
    ]
    if s.get("continue_max_s") is not None:
        rows.append(("continued after a kill", "within %.2f s at worst (%d kills; deadline %s s)"
                     % (s["continue_max_s"], len(s["continue_times"]), s.get("continue_deadline_s", "?"))))
    rows += [
        ("acknowledged mutations", "%d (log: %s lines, %s by serve itself%s)"
         % (s["acknowledged_mutations"], s.get("log_lines", "?"), s.get("log_serve_lines", "?"),
            ", %d sessions ended by brokers" % s["log_broker_session_ends"] if s.get("log_broker_session_ends") else "")),
        ("events", "%s received, %s missed (gaps), %s SNAPSHOT resyncs%s"
         % (s.get("events_received", "?"), s.get("events_missed", "?"), s.get("event_resyncs", "?"),
            " (%d subscribers, one per broker)" % s["event_subscribers"] if s.get("event_subscribers", 1) > 1 else "")),
        ("index", "%s users, %s files" % (s.get("index_users", "?"), s.get("index_files", "?"))),
        ("lost", str(s["lost"])),
        ("doubled", str(s["doubled"])),
        ("corrupt", str(s["corrupt"])),
        ("failures", "%d %s" % (s["failures"], s["violations_by_kind"] if s["failures"] else "")),
        ("verdict", s["verdict"]),
    ]
    width = max(len(k) for k, _ in rows)
    vwidth = max(len(str(v)) for _, v in rows)
    line = "+-%s-+-%s-+" % ("-" * width, "-" * vwidth)
    out = [line]
    for k, v in rows:
        out.append("| %s | %s |" % (k.ljust(width), str(v).ljust(vwidth)))
    out.append(line)
    return "\n".join(out)
