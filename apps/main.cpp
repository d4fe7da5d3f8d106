// `grpo`: one binary, subcommands registered by the apps/cmd_*.cpp files.
#include "common/cli.h"

int main(int argc, char** argv) { return grpo::run_cli(argc, argv); }
