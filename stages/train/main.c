/* ot-train: the program around the train stage (see train_stage.c). */
#include "train_stage.h"

int main(int argc, char **argv) { return ot_cli_main(&ot_train_stage_info, argc, argv, ot_train_stage_run); }
