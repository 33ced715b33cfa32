// SPDX-License-Identifier: Apache-2.0
// The time-series chart of one Datastream (uPlot). Dragging across it asks for a zoomed range.
import uPlot from "uplot";
import { formatNumber, formatTick, formatTime, t } from "./i18n.js";

const LINE = "#1f6f8b";
const BAND = "rgba(31, 111, 139, 0.18)";

/**
 * Draw `series` (from sta.loadSeries) into `element`; returns the uPlot instance.
 * `onZoom(from, to)` is called with Dates when the user selects a part of the x axis.
 */
export function drawChart(element, series, unit, onZoom) {
  element.replaceChildren();
  const width = Math.max(element.clientWidth, 280);
  const valueSeries =
    series.mode === "raw"
      ? [{ label: t("value"), stroke: LINE, width: 2, points: { show: series.times.length < 80 } }]
      : [
          { label: t("min"), stroke: LINE, width: 1 },
          { label: t("max"), stroke: LINE, width: 1 },
        ];
  const data =
    series.mode === "raw" ? [series.times, series.values] : [series.times, series.lows, series.highs];
  const options = {
    width,
    height: 240,
    series: [
      { label: t("time"), value: (u, v) => (v == null ? "" : formatTime(new Date(v * 1000))) },
      ...valueSeries.map((s) => ({ ...s, value: (u, v) => (v == null ? "–" : `${formatNumber(v)} ${unit}`) })),
    ],
    bands: series.mode === "buckets" ? [{ series: [2, 1], fill: BAND }] : [],
    axes: [{ values: (u, ticks) => ticks.map((v) => formatTick(v, ticks)), space: 70 }, { label: unit, size: 60, values: (u, ticks) => ticks.map((v) => formatNumber(v)) }],
    cursor: { drag: { x: true, y: false, setScale: false } },
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width < 5) return;
          const from = u.posToVal(u.select.left, "x");
          const to = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          onZoom(new Date(from * 1000), new Date(to * 1000));
        },
      ],
    },
  };
  return new uPlot(options, data, element);
}

/**
 * Add one live value (time in seconds) to a chart whose range ends now. Raw: one more point.
 * Buckets: it widens the last period's lowest/highest, or starts a new period after it.
 */
export function appendPoint(plot, series, time, value) {
  if (typeof value !== "number") return;
  if (series.mode === "raw") {
    series.times.push(time);
    series.values.push(value);
    plot.setData([series.times, series.values]);
    return;
  }
  const last = series.times.length - 1;
  const lastEnd = series.times[last] + series.size / 2000; // bucket middles, size in ms
  if (last >= 0 && time <= lastEnd) {
    series.lows[last] = series.lows[last] === null ? value : Math.min(series.lows[last], value);
    series.highs[last] = series.highs[last] === null ? value : Math.max(series.highs[last], value);
  } else {
    series.times.push(time + series.size / 2000);
    series.lows.push(value);
    series.highs.push(value);
  }
  plot.setData([series.times, series.lows, series.highs]);
}
