/* ot-retrieve: the program around the retrieve stage (see retrieve_stage.c). */
#include "retrieve_stage.h"

int main(int argc, char **argv) { return ot_cli_main(&ot_retrieve_stage_info, argc, argv, ot_retrieve_stage_run); }
