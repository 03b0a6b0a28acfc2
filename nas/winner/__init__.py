"""The winner of a run: the ``--pick`` rules, distillation, export of its files and its card
(``WinnerCard``, written as card.json and card.md)."""

from nas.winner._card import (
    Distillation,
    HostLatency,
    InputSpec,
    MemoryFacts,
    PteSection,
    TargetLatency,
    TfliteSection,
    TrainedAt,
    TrainingSeconds,
    WinnerCard,
    host_line,
)
from nas.winner._distill import NO_TEACHER, PICK_HELP, DistillConfig, distill_run, recipe_digest, winner_card_paths
from nas.winner._pick import device_of_folder, parse_rule, pick_winner, rule_of_folder, winner_folder
from nas.winner._ship import DEFAULT_FORMATS, FORMATS, export_run, parse_formats, pte_section, tflite_section

__all__ = [
    "DistillConfig",
    "FORMATS",
    "DEFAULT_FORMATS",
    "Distillation",
    "HostLatency",
    "InputSpec",
    "MemoryFacts",
    "TfliteSection",
    "PteSection",
    "TargetLatency",
    "TrainedAt",
    "TrainingSeconds",
    "WinnerCard",
    "NO_TEACHER",
    "PICK_HELP",
    "device_of_folder",
    "distill_run",
    "export_run",
    "host_line",
    "parse_formats",
    "parse_rule",
    "pick_winner",
    "recipe_digest",
    "tflite_section",
    "pte_section",
    "rule_of_folder",
    "winner_card_paths",
    "winner_folder",
]
