/* vllmc: the command-line entry point. Only main() turns errors into exit codes. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_tmpl.h"
#include "cli/cli_tok.h"
#include "vllmc.h"


static const char usage[] =
    "usage: vllmc <command> [options]\n"
    "commands:\n"
    "  serve MODEL_DIR [--port 8000] [--host H] ...   OpenAI-compatible API server (as vllm serve)\n"
    "  generate MODEL_DIR --prompt-token-ids 1,2,3 --max-tokens N --json   offline generation\n"
    "  tokenize DIR [--no-special] --json             stdin text -> {\"ids\":[...]}\n"
    "  detokenize DIR [--skip-special] --json         stdin {\"ids\":[...]} -> {\"text\":...}\n"
    "  chat-template DIR --messages FILE.json [--add-generation-prompt] [--chat-template FILE]\n"
    "  bench latency|throughput [MODEL_DIR | --random-weights CONFIG.json] ...  speed\n"
    "  bench tokenize DIR FILE                        tokenizer speed\n"
    "  --version                                                           print the version\n"
    "Run 'vllmc <command> --help' for a command's options.\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0) return cli_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "generate") == 0) return cli_generate(argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0) return cli_bench(argc - 2, argv + 2);
    if (strcmp(cmd, "tokenize") == 0) return cli_tokenize(argc - 2, argv + 2);
    if (strcmp(cmd, "detokenize") == 0) return cli_detokenize(argc - 2, argv + 2);
    if (strcmp(cmd, "chat-template") == 0) return cli_chat_template(argc - 2, argv + 2);
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
#if defined(VLLMC_TARGET_DEVICE_cpu)
        printf("vllmc %s (devices: cpu; built with VLLM_TARGET_DEVICE=cpu)\n", VLLMC_VERSION);
#else
        printf("vllmc %s (devices: cpu)\n", VLLMC_VERSION);
#endif
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "vllmc: error: unknown command '%s'\n", cmd);
    fputs(usage, stderr);
    return 2;
}
