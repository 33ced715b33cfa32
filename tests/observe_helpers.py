# SPDX-License-Identifier: Apache-2.0
"""Reading /metrics in tests: the exposition text parsed into {(name, labels): value}."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


class Exposition:
    """The samples of one /metrics answer."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples: dict[tuple[str, Labels], float] = {}
        for family in self.families.values():
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        """The value of the sample with exactly these labels; KeyError naming it when absent."""
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            known = sorted(str(dict(lbl)) for n, lbl in self.samples if n == name)
            raise KeyError(f"no sample {name}{labels}; present: {known}")
        return self.samples[key]

    def label_values(self, name: str, label: str) -> set[str]:
        """Every value `label` takes among the samples called `name`."""
        return {dict(lbl)[label] for n, lbl in self.samples if n == name and label in dict(lbl)}

    def names(self) -> set[str]:
        """The sample names present."""
        return {name for name, _ in self.samples}
