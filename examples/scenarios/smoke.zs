# smoke.zs: a tiny end-to-end run of zshare-harness (tools/harness/SCENARIOS.md): three seeders, a few files
# (one empty, one held by two seeders), every broker operation once with its status, downloads by name and by
# content. Runs in a few seconds; CI runs it (tests/integration/harness_tests.cmake).
set seed 11

peer alice
peer bob
peer carol
file alice song.mp3        300K content=song
file bob   song-copy.mp3   300K content=song
file bob   notes.txt       12K
file carol empty.dat       0
file carol photo.jpg       1.5M

# a user of the scenario's own, driven through the broker protocol
register dave
register dave                                   => USERNAME IN USE
publish dave report.pdf 2M quarterly report     => USER NOT CONNECTED
connect dave
connect dave                                    => OK    # again: dave's own key replaces its open session
publish dave report.pdf 2M quarterly report
publish dave report.pdf 2M another description  => CONTENT ALREADY PUBLISHED
publish dave "summer holiday.txt" 0 beach photos index

# queries: answers are checked against what the harness believes, `=> N` also checks the count
search quarterly                                => 1
search song                                     => 2
search cid=song                                 => 2
search HOLIDAY beach                            => 1
list-content dave                               => 2
list-content alice                              => 1
lookup alice song.mp3
lookup alice missing.mp3                        => FILE NOT EXIST
lookup nobody song.mp3                          => USER DOES NOT EXIST
list-users                                      => 4

# downloads: SHA-256 verified; by content id every holder is a source
get alice:song.mp3
get cid=song min-sources=2
get carol:empty.dat
get carol:photo.jpg
get bob:notes.txt

delete dave report.pdf
delete dave report.pdf                          => CONTENT NOT PUBLISHED
disconnect dave
disconnect dave                                 => USER NOT CONNECTED
unregister dave
unregister dave                                 => USER DOES NOT EXIST
search quarterly                                => 0
