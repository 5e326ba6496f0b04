/* vllmc: the command-line entry point. Only main() turns errors into exit codes. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_tmpl.h"
#include "cli/cli_tok.h"
#include "vllmc.h"


static const char usage[] =
    "usage: vllmc [-h] [-v] {serve,generate,bench,tokenize,detokenize,chat-template} ...\n"
    "\n"
    "vLLM's serving engine, in C. Start an OpenAI-compatible server with `vllmc serve [model_tag]`.\n"
    "\n"
    "positional arguments:\n"
    "  {serve,generate,bench,tokenize,detokenize,chat-template}\n"
    "    serve               Start the vLLM OpenAI Compatible API server (no model: the demo model).\n"
    "    generate            Offline generation for prompts given on the command line or in a JSONL\n"
    "                        file, through the engine (vLLM's LLM.generate).\n"
    "    bench               Benchmarks: latency, throughput, prefix-cache, serve, tokenize.\n"
    "    tokenize            Text on stdin to token ids with the model's tokenizer.\n"
    "    detokenize          Token ids on stdin to text.\n"
    "    chat-template       Render the model's chat template for a conversation.\n"
    "\n"
    "options:\n"
    "  -h, --help            show this help message and exit\n"
    "  -v, --version         show program's version number and exit\n"
    "\n"
    "Run 'vllmc <subcommand> --help' for a subcommand's options.\n";

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
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-v") == 0 || strcmp(cmd, "version") == 0) {
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
