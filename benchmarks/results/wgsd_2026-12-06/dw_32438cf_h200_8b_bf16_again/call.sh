# as run: the third call, on du's H200 still warm (carry .carry/cmds and .gptfast, gpt-fast's model.py); its gpt-fast
# stage failed at once (../shared is not on the device: "can't open file", rc 2; dx ran it from a copy), so this folder
# holds the 8B BF16 pair again, dense and Spense 25 %, with the extension du had built
OUT=$OUT SPENSE_COMMIT=32438cf+ LETTER=dw timeout 540 bash .carry/cmds/q3.sh
