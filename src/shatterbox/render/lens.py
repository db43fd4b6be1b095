"""Lenses and steering drawn: the layer x position table of a lens (each layer's top token, coloured by the probability of
the final prediction) and the steering report (continuations at each strength, concept and fluency, the summary with its
flags), in the terminal and as self-contained pages (plots.js: a click shows a cell's top tokens; a slider picks the
steering strength).

Examples:
    >>> import numpy as np
    >>> from shatterbox.lens import LensResult
    >>> r = LensResult("logit", "m", "a b", ["a", "<b>"], [0, 1], ["b", "c"], [[[("x", 0.5)], [("y", 0.5)]]] * 2,
    ...                np.array([[3, 1], [0, 0]]), np.array([[0.1, 0.2], [0.9, 0.8]]), np.array([[2.0, 1.0], [0.0, 0.0]]))
    >>> page = lens_page(r)
    >>> 'data-sb-plot="lens"' in page, "<b>" in page.split("<script>")[0]
    (True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from shatterbox.render.generation import display_token
from shatterbox.render.plots import page, plot_fragment

if TYPE_CHECKING:
    from shatterbox.lens import ClassifierLensResult, LensResult
    from shatterbox.steering import SteeringResult


def lens_fragment(result: "LensResult | ClassifierLensResult") -> str:
    """The lens table as an HTML fragment (notebooks)."""
    return plot_fragment([("lens", result.to_dict())])


def lens_page(result: "LensResult | ClassifierLensResult") -> str:
    """A self-contained page around :func:`lens_fragment`."""
    return page(f"{result.to_dict()['lens']} lens · {result.text}", lens_fragment(result))


def lens_renderable(result: "LensResult", *, top: int = 1) -> Group:
    """Rows = hidden layers, columns = positions: each layer's top token (green where it is the final prediction), then
    the layer's mean KL to the final layer and its top-1 agreement.

    Examples:
        >>> import io
        >>> import numpy as np
        >>> from rich.console import Console
        >>> from shatterbox.lens import LensResult
        >>> r = LensResult("logit", "m", "a b", ["a", "b"], [0, 1], ["b", "c"], [[[("x", 0.5)], [("c", 0.5)]]] * 2,
        ...                np.array([[3, 0], [0, 0]]), np.array([[0.1, 0.5], [0.9, 0.8]]), np.array([[2.0, 1.0], [0.0, 0.0]]))
        >>> c = Console(width=100, record=True, file=io.StringIO()); c.print(lens_renderable(r)); "mean KL" in c.export_text()
        True
    """
    table = Table(title=f"{result.lens} lens of {result.model}: each layer's top token (green: the final prediction)", show_lines=False)
    table.add_column("layer", justify="right")
    for tok in result.tokens:
        table.add_column(display_token(tok), justify="left", overflow="ellipsis", max_width=12)
    table.add_column("mean KL", justify="right")
    table.add_column("top-1", justify="right")
    for i, layer in enumerate(result.layers):
        cells = [Text(display_token(result.top[i][p][0][0]), style="bold green" if result.rank[i, p] == 0 else "") for p in range(len(result.tokens))]
        table.add_row(str(layer), *cells, f"{result.mean_kl[i]:.2f}", f"{100 * result.agreement[i]:.0f} %")
    table.add_row("final", *[Text(display_token(t), style="bold") for t in result.predicted], "", "")
    parts = [table, Text(f"first layer from which the final prediction stays on top, per position: {result.first_layer()}; {result.seconds:.2f} s")]
    parts += [Text(f"note: {n}", style="yellow") for n in result.notes]
    return Group(*parts)


def classifier_lens_renderable(result: "ClassifierLensResult") -> Group:
    """One row per layer: the label the pooled head predicts there, each label's probability, KL to the last layer.

    Examples:
        >>> import io
        >>> import numpy as np
        >>> from rich.console import Console
        >>> from shatterbox.lens import ClassifierLensResult
        >>> r = ClassifierLensResult("m", "clf", "t", ["neg", "pos"], [0, 1], np.array([[0.5, 0.5], [0.1, 0.9]]), np.array([0.4, 0.0]))
        >>> c = Console(width=100, record=True, file=io.StringIO()); c.print(classifier_lens_renderable(r)); "p(pos)" in c.export_text()
        True
    """
    table = Table(title=f"classifier lens: {result.classifier} read at every layer")
    for column in ("layer", "predicted", *[f"p({x})" for x in result.labels], "KL to last"):
        table.add_column(column, justify="right")
    for i, layer in enumerate(result.layers):
        table.add_row(str(layer), result.predicted[i], *[f"{p:.3f}" for p in result.probs[i]], f"{result.kl[i]:.3f}")
    return Group(table, *[Text(f"note: {n}", style="yellow") for n in result.notes])


def steering_fragment(result: "SteeringResult") -> str:
    """The steering report (strength slider, continuations, summary) as an HTML fragment."""
    return plot_fragment([("steering", result.to_dict())])


def steering_page(result: "SteeringResult") -> str:
    """A self-contained page around :func:`steering_fragment`."""
    return page(f"steering · {result.model}", steering_fragment(result))


def steering_renderable(result: "SteeringResult", *, texts: bool = True) -> Group:
    """The summary over prompts (flagged rows in yellow), then each prompt's continuations, then the verdict.

    Examples:
        >>> import io
        >>> from rich.console import Console
        >>> from shatterbox.steering import SteeringResult
        >>> rows = [{"prompt": 0, "direction": "unsteered", "kind": "none", "alpha": 0.0, "concept": 0.2, "fluency": -2.0, "text": " ok", "tokens": 1}]
        >>> c = Console(width=100, record=True, file=io.StringIO()); c.print(steering_renderable(SteeringResult("m", 1, "all", "sentiment", "positive", [0.0], [], ["p"], rows)))
        >>> "unsteered" in c.export_text()
        True
    """
    summary = Table(title=f"steering {result.model} at hidden layer {result.layer}: concept {result.concept}, fluency in nats per token")
    for column in ("direction", "strength", "concept", "change", "fluency", "fluency loss", "flag"):
        summary.add_column(column, justify="right" if column not in ("direction", "flag") else "left")
    for s in result.summary():
        summary.add_row(s["direction"], "prompted" if s["alpha"] is None else f"{s['alpha']:g}", f"{s['concept']:.3f}", f"{s['concept_change']:+.3f}",
                        "-" if s["fluency"] is None else f"{s['fluency']:.2f}", "-" if s["fluency_loss"] is None else f"{s['fluency_loss']:.2f}",
                        Text(s["flag"], style="yellow"))
    parts: list = [summary]
    if texts:
        for k, prompt in enumerate(result.prompts):
            table = Table(title=f"“{prompt}”", show_header=True)
            for column in ("direction", "strength", "concept", "fluency", "continuation"):
                table.add_column(column, justify="left" if column in ("direction", "continuation") else "right")
            for r in (r for r in result.rows if r["prompt"] == k):
                table.add_row(r["direction"], "prompted" if r["alpha"] is None else f"{r['alpha']:g}", f"{r['concept']:.3f}",
                              "-" if r["fluency"] is None else f"{r['fluency']:.2f}", Text(r["text"].replace("\n", "⏎")))
            parts.append(table)
    parts.append(Text(result.verdict(), style="bold"))
    parts += [Text(f"note: {n}", style="yellow") for n in result.notes]
    return Group(*parts)
