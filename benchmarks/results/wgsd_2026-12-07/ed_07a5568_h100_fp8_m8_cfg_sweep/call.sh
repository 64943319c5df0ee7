# as run: the sixth ask of the sixty-second stop (kind nvidia-h200, either card; an H100 came; carry .carry and
# .gptfast), at 07a5568. r11.sh (copied here) runs r10.sh on an H200 and r4h.sh elsewhere; command.sh is r4h.sh as it
# ran: the H100's FP8 M = 8 cells of the four 8B shapes swept against its packaged table. Its dense FP8 step ran out of
# its 90 s while the extension built beside it (rc 124), so ee measured it again.
SPENSE_COMMIT=07a5568 LETTER=ed bash .carry/cmds/r11.sh
