# faults.zs: the random workload while the broker, a seeder and the logger are killed with kill -9 on a
# schedule (and once more by hand), plus a scenario user whose session a broker restart ends. Nothing
# acknowledged may be lost or doubled in the operations log, no download may leave a corrupt file, the event
# subscriber resyncs after each restart, and the index must equal what everyone believes. About 20 seconds.
set seed 21
set kill-broker-every 4
set kill-seeder-every 5
set kill-logger-every 3
layout random peers=6 files=16
peer archive
file archive guide.pdf 2M content=guide
file p01     guide.pdf 2M content=guide

register ops-admin
connect ops-admin
publish ops-admin runbook.txt 4K incident runbook
publish ops-admin "pager rota.csv" 1K weekly pager rota

random ops=2000 seconds=20 workers=4

# a restart by hand: sessions do not survive it, files do
kill-broker
publish ops-admin late.txt 1K too late                   => USER NOT CONNECTED
connect ops-admin
publish ops-admin late.txt 1K not too late
search runbook                                           => 1
list-content ops-admin                                   => 3
get cid=guide min-sources=2                              => OK
