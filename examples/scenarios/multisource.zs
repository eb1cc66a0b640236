# multisource.zs: one 6 MiB content held by four rate-limited seeders (512 KiB/s each): a get by content id
# draws chunks from all of them; two gets at once; a seeder killed (-9) mid-transfer while the others finish;
# restarted, it serves again; a fifth seeder flips a byte in every third chunk it sends, and downloads from it
# must still be right. Every file written is checked against its content id. Takes about 20 seconds.
set seed 5
set window 4
set chunk-size 64K

peer s1 rate-limit=512K
peer s2 rate-limit=512K
peer s3 rate-limit=512K
peer s4 rate-limit=512K
file s1 dataset.bin       6M   content=dataset
file s2 dataset.bin       6M   content=dataset
file s3 dataset-copy.bin  6M   content=dataset
file s4 dataset.bin       6M   content=dataset
file s2 readme.txt        40K
peer liar corrupt-every=3
file liar manual.pdf      1M   content=manual
file s1   manual.pdf      1M   content=manual

search dataset                                  => 4
search cid=dataset                              => 4
get cid=dataset min-sources=4                   => OK

# two downloads at once: by content, and by name from one seeder only (a small file)
get cid=dataset min-sources=4 &
get s2:readme.txt &
wait

# a seeder dies mid-transfer: its chunks are asked again from the others, the file is complete and right
get cid=dataset min-sources=4                   => OK &
sleep 1.5
kill-seeder s3
wait
restart-seeder s3
get s3:dataset-copy.bin window=8                => OK

# bad chunks from `liar` are detected against their chunk-layer nodes and asked again: from s1, or from liar itself
get cid=manual min-sources=2                    => OK
get liar:manual.pdf                             => OK
