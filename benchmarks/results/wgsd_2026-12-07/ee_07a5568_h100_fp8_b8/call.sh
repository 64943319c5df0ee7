# the call: run(command="<command.sh without its comments>", kind="nvidia-h200", carry=[".carry", ".gptfast"]); an H100 came, warm
