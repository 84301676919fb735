/* ot-index: the program around the index stage (see index_stage.c). */
#include "index_stage.h"

int main(int argc, char **argv) { return ot_cli_main(&ot_index_stage_info, argc, argv, ot_index_stage_run); }
