from reco.expansion import report


def _summary(truth: bool) -> dict:
    def figures(recall: float, share: float) -> dict:
        out = {"recall@holdout": recall, "recall@holdout_se": 0.01, "auc": 0.7}
        if truth:
            out["truth_precision@holdout"] = share
        return out

    methods = {"blend": figures(0.02, 0.93), "density": figures(0.01, 0.85), "random": figures(0.0, 0.06)}
    methods["most_active"] = figures(0.0, 0.10)
    return {"small": {"lists": 2, "mean_size": 30.0, "methods": methods}}


def test_with_planted_communities_the_report_leads_with_the_community_share():
    summary = _summary(truth=True)
    assert report.headline_metric(summary) == report.TRUTH
    assert report.headline_lines(summary) == ["small lists: blend 0.930, vs random 0.060, most active 0.100"]
    md = report.report_md(summary, {"lists": 2, "source": "planted communities", "splits": 3})
    first_plot = md.index("![")
    assert md.index("true members") < first_plot and md[first_plot:].startswith("![share of the audience")
    assert md.index("expansion_truth.png") < md.index("expansion_recall.png")
    assert list(report.plots(summary)) == ["expansion_truth.png", "expansion_recall.png"]
    # one line per metric, before the full table
    assert md.index("**truthP**") < md.index("**R**") < md.index("| method |")


def test_the_headline_names_a_better_method_and_tables_escape_the_pipe():
    summary = _summary(truth=True)
    summary["small"]["methods"]["centroid"] = {**summary["small"]["methods"]["blend"], report.TRUTH: 0.99}
    assert report.headline_lines(summary)[0].startswith("small lists: blend 0.930 (best: centroid 0.990), vs random")
    header = next(line for line in report.table_lines(summary) if line.startswith("| method"))
    separator = next(line for line in report.table_lines(summary) if line.startswith("|---"))
    assert "R@\\|H\\|" in header and header.replace("\\|", "").count("|") == separator.count("|")


def test_without_truth_the_headline_is_recall_of_held_out_seeds():
    summary = _summary(truth=False)
    assert report.headline_metric(summary) == report.RECALL
    assert report.headline_lines(summary) == ["small lists: blend 0.020, vs random 0.000, most active 0.000"]
    md = report.report_md(summary, {"lists": 2})
    assert "expansion_truth.png" not in md and "**truthP**" not in md
    assert list(report.plots(summary)) == ["expansion_recall.png"]
    lines = report.console_lines({"meta": {"lists": 2}, "buckets": summary})
    assert "recall at |H|" in lines[0] and lines[1].strip().startswith("small lists: blend")
