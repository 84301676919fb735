/* ot-eval: the program around the eval stage (see eval_stage.c). */
#include "eval_stage.h"

int main(int argc, char **argv) { return ot_cli_main(&ot_eval_stage_info, argc, argv, ot_eval_stage_run); }
