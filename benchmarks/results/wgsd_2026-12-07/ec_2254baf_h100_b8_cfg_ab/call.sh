# the call: run(command="<command.sh without its comments>", kind="nvidia-h200", carry=[".carry", ".gptfast"], timeout_s=300); an H100 came, warm
