/* ot-tag: see tag_stage.h (the stage as a library) and ot-tag --help. */
#include "tag_stage.h"

int main(int argc, char **argv) { return ot_cli_main(&ot_tag_stage_info, argc, argv, ot_tag_stage_run); }
