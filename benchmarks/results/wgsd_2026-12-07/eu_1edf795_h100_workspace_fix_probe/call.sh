# call 1 (a fresh H100; `. g270_setup.sh` from the command line, so command.sh holds only the sourced file):
export LETTER=eu SPENSE_COMMIT=1edf795; . benchmarks/g270_setup.sh eu; timeout 100 python benchmarks/graph_mem_probe.py /tmp/g270 --variant dense --graph plain > $W/probe_dense_plain.txt 2>&1; head -14 $W/probe_dense_plain.txt | cut -c1-160; timeout 60 python -m pytest -q -p no:cacheprovider tests/test_timing.py > $W/test.txt 2>&1; tail -1 $W/test.txt; cd $OUT && tar czf eu.tar.gz eu && rm -rf eu
# call 2 (the same machine, warm, /tmp/g270 kept from call 1):
export PYTHONPATH=src; mkdir -p $OUT/eu2; timeout 100 python benchmarks/graph_mem_probe.py /tmp/g270 --variant dense --graph tree > $OUT/eu2/probe_dense_tree.txt 2>&1; head -7 $OUT/eu2/probe_dense_tree.txt
