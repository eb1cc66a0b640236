# cluster.zs: two brokers on one throw-away PostgreSQL database serve one network. The random workload runs while
# the brokers are killed (-9) in turn, each restarted 4 s later, and the logger is killed too; then b2 is killed by
# hand for longer than its lease (5 s), so that the other broker ends its sessions. Peers and the driver's clients
# are given both brokers and fail over. After each kill every seeder that was online must be served by a live
# broker within 5 s (continue-deadline); nothing acknowledged may be lost or doubled in the operations log, every
# broker's subscriber must see the same events at the same seq, and the index must equal what everyone believes.
# About 30 seconds of operations.
set brokers 2
set store postgres
set seed 41
set kill-broker-every 6
set broker-down 4
set kill-logger-every 7
layout random peers=6 files=14
peer archive
file archive guide.pdf 2M content=guide
file p01     guide.pdf 2M content=guide

register ops-admin
connect ops-admin
publish ops-admin runbook.txt 4K cluster runbook

random ops=6000 seconds=20 workers=4

# by hand: b2 stays down past its lease; its sessions end through b1 ("broker b2 stopped")
kill-broker b2 down=7
search runbook                                           => 1
list-content ops-admin                                   => 1
get cid=guide min-sources=2                              => OK
