/* ot-extract: the program around the extract stage (see extract_stage.c). */
#include "extract_stage.h"

int main(int argc, char **argv) { return ot_cli_main(&ot_extract_stage_info, argc, argv, ot_extract_stage_run); }
