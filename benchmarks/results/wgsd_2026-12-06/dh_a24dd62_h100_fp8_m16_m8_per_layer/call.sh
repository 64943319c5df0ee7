# as run: the command in command.sh, as one call on de's machine while it stayed warm (kind nvidia-h100-x1)
