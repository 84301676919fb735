/* ot-embed: the program around the embed stage (see embed_stage.c). */
#include "embed_stage.h"

int main(int argc, char **argv) { return ot_cli_main(&ot_embed_stage_info, argc, argv, ot_embed_stage_run); }
