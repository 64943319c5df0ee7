# as run: the second device call (the first call's n24.sh ran n23.sh too, but its files were more than a call brings
# back and were lost); command.sh is n23.sh
W=/tmp/o2; mkdir -p $W; OUT=$W SPENSE_COMMIT=1205073 LIM=330 LETTER=bu bash .carry/cmds/n23.sh > $W/stdout.txt 2>&1; tar czf $OUT/bu.tgz -C $W . ; tail -40 $W/stdout.txt; cat $W/bu/times.txt
