// Charts (core/web/charts.py builds their options): the one script that draws every chart
// of the site, so a fix or a new kind lands on every page at once.
//
// Contract: every [data-chart] holder on the page holds its Apache ECharts option as JSON
// (<script type="application/json">), built on the server, every data item carrying the
// URL of its records. Include /static/vendor/echarts/echarts.min.js, then this file (both
// deferred). Each chart is drawn with the SVG renderer, aria on; numbers in the reader's
// number locale with Intl.NumberFormat (option.crbm: the locale, the currency when the
// figures are amounts); a click on a bar, slice or step opens its records. A chart is
// resized with its box, the window, and on the event "crbm:relayout" (a page that moves
// its boxes — the dashboard — dispatches it on document). A hidden holder is shown once
// drawn, and the element its data-chart-hint names (a "select a segment" sentence, true
// only with this script). The table beside every chart holds the same figures for
// everyone: nothing depends on this file.
//
// option.crbm.look: "panel" (a dashlet: a fixed box, the server's colours) or "page" (a
// report's page: sized here, its bars turned across on a narrow screen, a figure on each).
"use strict";

(() => {
  const NARROW = 560; // px: a "page" chart narrower than this is a phone's
  const drawn = [];

  const formatters = (meta) => {
    const money = meta.currency ? { style: "currency", currency: meta.currency } : {};
    const make = (locale) => [
      new Intl.NumberFormat(locale, meta.currency ? money : { maximumFractionDigits: 2 }),
      new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1, ...money }),
    ];
    let full;
    let compact;
    try {
      [full, compact] = make(meta.locale || document.documentElement.lang || undefined);
    } catch (error) { // a locale or currency the browser does not know: plain numbers
      full = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
      compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
    }
    return {
      full: (v) => (v === null || v === undefined || v === "-" ? "–" : full.format(v)),
      compact: (v) => compact.format(v),
    };
  };

  const theme = () => {
    const css = getComputedStyle(document.documentElement);
    const value = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    const primary = value("--color-primary", "#1f6feb");
    return {
      text: value("--color-text", "#1f2933"),
      muted: value("--color-muted", "#616e7c"),
      border: value("--color-border", "#d9e2ec"),
      font: getComputedStyle(document.body).fontFamily || value("--font-body", "sans-serif"),
      palette: [primary, "#f0a202", "#2e9e6b", "#8e5cc9", "#00838f", "#e4572e", "#6d4c41",
        "#546e7a", "#c2185b", "#9e9d24"],
    };
  };

  // -- the looks: what differs between a dashlet and a report's page ---------------------
  const looks = {
    panel(option, meta, f) {
      if (meta.kind === "funnel") {
        option.series[0].label = { ...option.series[0].label,
          formatter: (p) => `${p.name}\n${f.compact(p.value)}` };
      }
      return option;
    },

    page(option, meta, f, holder, narrow, colours) {
      const bars = meta.kind === "bar" || meta.kind === "stacked_bar";
      let height = narrow ? 300 : 380;
      if (option.xAxis) {
        const categories = option.xAxis.data.length;
        option.xAxis.axisLabel = { color: colours.muted, hideOverlap: true,
          rotate: !bars && narrow && categories > 4 ? 40 : 0 };
        option.xAxis.axisLine = { lineStyle: { color: colours.border } };
        option.yAxis.axisLabel = { ...option.yAxis.axisLabel, color: colours.muted };
        option.yAxis.splitLine = { lineStyle: { color: colours.border } };
        const across = bars && (narrow || categories > 12);
        if (across) { // long labels read across: horizontal bars
          [option.xAxis, option.yAxis] = [option.yAxis, { ...option.xAxis, inverse: true }];
          option.yAxis.axisLabel = { color: colours.text, width: narrow ? 110 : 220, overflow: "truncate" };
          height = Math.max(height, categories * (narrow ? 34 : 28) + 70);
        } else if (bars && categories > 6) {
          option.xAxis.axisLabel.rotate = 30;
        }
        if (option.series.length === 1 && categories <= 20) { // each figure on its bar or point
          option.series[0].label = { show: true, position: across ? "right" : "top",
            color: colours.text, formatter: (p) => f.compact(p.value) };
          option.grid = { ...option.grid, right: across ? 64 : 16, top: across ? 16 : 28 };
        }
      } else {
        const series = option.series[0];
        if (meta.kind === "funnel") {
          series.label = { ...series.label, color: "#fff",
            formatter: (p) => `${p.name}: ${f.compact(p.value)}` };
        } else {
          series.label = { show: !narrow, color: colours.text, formatter: "{b}\n{d}%" };
          if (narrow) series.radius = meta.kind === "donut" ? ["38%", "62%"] : "62%";
        }
        height = narrow ? 340 : 400;
      }
      holder.style.height = `${height}px`;
      return option;
    },
  };

  // the option to draw at this width: the server's, themed and formatted, in its look
  const optionFor = (base, meta, f, holder, narrow) => {
    const colours = theme();
    const option = structuredClone(base);
    if (!option.color) option.color = colours.palette;
    if (option.animation !== false) {
      option.animation = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    }
    option.textStyle = { ...(option.textStyle || {}), fontFamily: colours.font, color: colours.text };
    option.tooltip = { ...(option.tooltip || {}), valueFormatter: f.full, confine: true };
    for (const axis of [option.xAxis, option.yAxis]) {
      if (axis && axis.type === "value") axis.axisLabel = { ...(axis.axisLabel || {}), formatter: f.compact };
    }
    return (looks[meta.look] || looks.panel)(option, meta, f, holder, narrow, colours);
  };

  const draw = (holder) => {
    const source = holder.querySelector("script[type='application/json']");
    let base;
    try {
      base = JSON.parse(source.textContent);
    } catch (error) { // no option, or not one: the table beside it still says everything
      return;
    }
    const meta = base.crbm || {};
    delete base.crbm;
    const f = formatters(meta);
    holder.hidden = false;
    const wide = () => meta.look === "page" && holder.clientWidth < NARROW;
    let narrow = wide();
    const chart = window.echarts.init(holder, null, { renderer: "svg" });
    chart.setOption(optionFor(base, meta, f, holder, narrow));
    chart.resize();
    chart.on("click", (params) => {
      const url = params.data && params.data.url;
      if (url) window.location.assign(url);
    });
    const fit = () => {
      if (wide() !== narrow) {
        narrow = !narrow;
        chart.setOption(optionFor(base, meta, f, holder, narrow), { notMerge: true });
      }
      chart.resize();
    };
    drawn.push(fit);
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(() => window.requestAnimationFrame(fit)).observe(holder);
    }
    const hint = holder.dataset.chartHint && document.getElementById(holder.dataset.chartHint);
    if (hint) hint.hidden = false;
  };

  document.addEventListener("DOMContentLoaded", () => {
    if (!window.echarts) return;
    document.querySelectorAll("[data-chart]").forEach(draw);
    const fitAll = () => drawn.forEach((fit) => fit());
    window.addEventListener("resize", fitAll);
    document.addEventListener("crbm:relayout", fitAll);
  });
})();
