// SPDX-License-Identifier: Apache-2.0
// The twinhub viewer: a map of the Things, their latest values, a chart per Datastream, live updates.
// It only uses the public SensorThings API and the hub's event stream (see sta.js, docs/viewer.md).
import L from "leaflet";
import "leaflet/dist/leaflet.css";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { appendPoint, drawChart } from "./chart.js";
import {
  formatDuration,
  formatNumber,
  formatTime,
  getLanguage,
  setLanguage,
  streamLabel,
  t,
  unitLabel,
} from "./i18n.js";
import { getJson, listen, loadSeries, loadThings, timeOf } from "./sta.js";

// Thing.properties keys the viewer reads (docs/viewer.md); missing ones fall back to "unknown".
const CITY_KEY = "city";
const DOMAIN_KEY = "domain";
const UNKNOWN = "";
const KNOWN_DOMAINS = ["energy", "climate", "traffic"];
const RANGES = { "6h": 6, "24h": 24, "7d": 24 * 7, "30d": 24 * 30, "365d": 24 * 365 };
const PALETTE = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]; // viridis: readable when printed grey
const NEUTRAL = "#6c7a89";

const $ = (id) => document.getElementById(id);

const state = {
  config: null,
  things: [], // {id, name, city, domain, lat, lon, datastreams: [{id, name, quantity, unit, latest: {value, time}}]}
  datastreams: new Map(), // id -> datastream (shared objects with things[].datastreams)
  selected: null, // the Thing whose details are shown
  chart: null, // {datastream, from, to, zoomed, series, plot}
  range: "24h",
  liveCount: 0,
  fresh: new Set(), // Datastream ids with a new value since the last redraw (highlighted)
  markers: new Map(), // Thing id -> Leaflet circle marker
  detailsKey: null, // what the panel's rows were built for (Thing, language, Datastreams)
};

// ---- data --------------------------------------------------------------------------------------

function toThing(raw) {
  const properties = raw.properties ?? {};
  const geometry = raw.Locations?.[0]?.location;
  const point = geometry?.type === "Feature" ? geometry.geometry : geometry;
  const [lon, lat] = point?.type === "Point" ? point.coordinates : [NaN, NaN];
  const thing = {
    id: raw["@iot.id"],
    name: raw.name,
    labels: { en: textOf(properties.label_en), de: textOf(properties.label_de) }, // demo-style translations
    description: raw.description,
    city: typeof properties[CITY_KEY] === "string" ? properties[CITY_KEY] : UNKNOWN,
    domain: typeof properties[DOMAIN_KEY] === "string" ? properties[DOMAIN_KEY].toLowerCase() : UNKNOWN,
    lat,
    lon,
    datastreams: [],
  };
  for (const stream of raw.Datastreams ?? []) {
    const last = stream.Observations?.[0];
    const datastream = {
      id: stream["@iot.id"],
      name: stream.name,
      quantity: stream.ObservedProperty?.name ?? stream.name,
      stream: textOf(stream.properties?.stream),
      unit: unitLabel(stream.unitOfMeasurement),
      unitName: stream.unitOfMeasurement?.name ?? "",
      latest: last ? { value: last.result, time: timeOf(last.phenomenonTime) } : null,
      thing,
    };
    thing.datastreams.push(datastream);
    state.datastreams.set(datastream.id, datastream);
  }
  return thing;
}

function textOf(value) {
  return typeof value === "string" && value !== "" ? value : null;
}

/** The Thing's name in the current language: properties.label_en / label_de when given. */
function thingName(thing) {
  return thing.labels[getLanguage()] ?? thing.name;
}

/**
 * A row's title: the ObservedProperty's name; when the Thing has several Datastreams of one
 * quantity (cars in total, to the left, to the right) each gets its direction or stream key.
 */
function datastreamTitle(datastream) {
  const twins = datastream.thing.datastreams.filter((d) => d.quantity === datastream.quantity);
  if (twins.length < 2) return datastream.quantity;
  const label = streamLabel(datastream.stream, twins.map((d) => d.stream));
  return `${datastream.quantity} (${label})`;
}

async function reloadThings() {
  const raw = await loadThings(state.config.sta);
  state.datastreams.clear();
  state.things = raw.map(toThing).filter((thing) => Number.isFinite(thing.lat) && Number.isFinite(thing.lon));
  if (state.selected) state.selected = state.things.find((thing) => thing.id === state.selected.id) ?? null;
  if (state.chart) state.chart.datastream = state.datastreams.get(state.chart.datastream.id) ?? state.chart.datastream;
}

// ---- filters -----------------------------------------------------------------------------------

function cityLabel(city) {
  return city === UNKNOWN ? t("unknownCity") : city;
}

function domainLabel(domain) {
  if (domain === UNKNOWN) return t("unknownDomain");
  return KNOWN_DOMAINS.includes(domain) ? t(domain) : domain;
}

function fillSelect(select, allLabel, values, label) {
  const previous = select.value;
  select.replaceChildren(new Option(allLabel, "*"));
  for (const value of values) select.add(new Option(label(value), value));
  select.value = [...select.options].some((o) => o.value === previous) ? previous : "*";
}

function renderFilters() {
  const unique = (values) => [...new Set(values)].sort((a, b) => a.localeCompare(b));
  fillSelect($("city"), t("allCities"), unique(state.things.map((x) => x.city)), cityLabel);
  const domains = unique([...KNOWN_DOMAINS, ...state.things.map((x) => x.domain)]);
  fillSelect($("domain"), t("allDomains"), domains, domainLabel);
  const quantities = unique(state.things.flatMap((x) => x.datastreams.map((d) => d.quantity)));
  fillSelect($("quantity"), t("allQuantities"), quantities, (q) => q);
}

function visibleThings() {
  const city = $("city").value;
  const domain = $("domain").value;
  const quantity = $("quantity").value;
  return state.things.filter(
    (thing) =>
      (city === "*" || thing.city === city) &&
      (domain === "*" || thing.domain === domain) &&
      (quantity === "*" || thing.datastreams.some((d) => d.quantity === quantity)),
  );
}

// ---- map ---------------------------------------------------------------------------------------

const map = L.map("map", { preferCanvas: false, zoomControl: true }).setView([51.2, 10.4], 6);

function addBaseMap(config) {
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { maxZoom: 19, attribution: config.tileAttribution ?? "" }).addTo(map);
  } else {
    document.body.classList.add("no-tiles"); // plain background, the markers and their labels still work
  }
}

/** The latest value of the chosen quantity at a Thing, when it has one that is a number. */
function chosenValue(thing) {
  const quantity = $("quantity").value;
  if (quantity === "*") return null;
  const stream = thing.datastreams.find((d) => d.quantity === quantity && typeof d.latest?.value === "number");
  return stream ? { value: stream.latest.value, unit: stream.unit } : null;
}

function colourScale(things) {
  const values = things.map(chosenValue).filter(Boolean).map((v) => v.value);
  if (values.length === 0) return null;
  const low = Math.min(...values);
  const high = Math.max(...values);
  const colour = (value) => {
    const share = high === low ? 0.5 : (value - low) / (high - low);
    return PALETTE[Math.min(PALETTE.length - 1, Math.floor(share * PALETTE.length))];
  };
  return { low, high, colour };
}

const cityLabels = L.layerGroup().addTo(map);

/** A label at the middle of each city's sites, so the map reads without a base map too. */
function renderCityLabels(things) {
  cityLabels.clearLayers();
  const byCity = new Map();
  for (const thing of things) {
    if (thing.city !== UNKNOWN) byCity.set(thing.city, [...(byCity.get(thing.city) ?? []), thing]);
  }
  for (const [city, members] of byCity) {
    const lat = members.reduce((sum, x) => sum + x.lat, 0) / members.length;
    const lon = members.reduce((sum, x) => sum + x.lon, 0) / members.length;
    const icon = L.divIcon({ className: "city-label", html: el("span", {}, city), iconSize: null });
    L.marker([lat, lon], { icon, interactive: false, keyboard: false }).addTo(cityLabels);
  }
}

function renderMap({ fit = false } = {}) {
  const things = visibleThings();
  const scale = colourScale(things);
  const shown = new Set(things.map((thing) => thing.id));
  for (const [id, marker] of state.markers) {
    if (!shown.has(id)) {
      marker.remove();
      state.markers.delete(id);
    }
  }
  for (const thing of things) {
    const value = chosenValue(thing);
    const colour = value && scale ? scale.colour(value.value) : NEUTRAL;
    let marker = state.markers.get(thing.id);
    if (!marker) {
      marker = L.circleMarker([thing.lat, thing.lon], { radius: 9, weight: 2, className: "thing-marker" })
        .on("click", () => selectThing(thing.id))
        .addTo(map);
      // The tooltip gets an element, not an HTML string: Leaflet would parse a string as markup.
      // Live redraws change its text in place, so a tooltip being read stays open.
      marker.bindTooltip(el("span", { className: "thing-tip" }));
      state.markers.set(thing.id, marker);
    }
    marker.setLatLng([thing.lat, thing.lon]);
    const chosen = thing.id === state.selected?.id; // the Thing in the panel: a dark ring
    marker.setStyle({ color: chosen ? "#1d2733" : "#ffffff", weight: chosen ? 3 : 2, fillColor: colour, fillOpacity: 0.9 });
    const name = thingName(thing);
    const label = value ? `${name}: ${formatNumber(value.value)} ${value.unit}` : name;
    const tip = marker.getTooltip().getContent();
    if (tip.textContent !== label) {
      tip.textContent = label;
      if (marker.isTooltipOpen()) marker.getTooltip().update(); // its size follows the text
    }
    const element = marker.getElement();
    element?.setAttribute("data-thing", String(thing.id));
    element?.setAttribute("aria-label", label);
  }
  renderLegend(things, scale);
  renderCityLabels(things);
  if (fit && things.length > 0) {
    // Without animation: Leaflet ignores a new view asked for while it still animates the last
    // one, so changing two filters in quick succession would leave the first filter's view.
    map.fitBounds(L.latLngBounds(things.map((x) => [x.lat, x.lon])).pad(0.2), { maxZoom: 13, animate: false });
  }
}

function renderLegend(things, scale) {
  const quantity = $("quantity").value;
  const legend = $("legend");
  const count = el("p", { className: "count" }, t("things", things.length));
  if (quantity === "*" || !scale) {
    legend.replaceChildren(count, el("p", { className: "note" }, t("legendNone")));
    return;
  }
  const unit = things.map(chosenValue).find(Boolean)?.unit ?? "";
  const stops = PALETTE.map((colour) => {
    const stop = el("span");
    stop.style.background = colour; // CSSOM, which the page's Content-Security-Policy allows
    return stop;
  });
  legend.replaceChildren(
    count,
    el("p", {}, t("legend", quantity)),
    el("div", { className: "scale" }, ...stops),
    el(
      "div",
      { className: "scale-labels" },
      el("span", {}, `${formatNumber(scale.low)} ${unit}`),
      el("span", {}, `${formatNumber(scale.high)} ${unit}`),
    ),
  );
}

// ---- details of one Thing ----------------------------------------------------------------------

/**
 * A new element: `props` are set as DOM properties, `children` appended (strings as text nodes).
 * Data from the hub (names, units, results) is only ever placed like this, never parsed as HTML.
 */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

function selectThing(id) {
  state.selected = state.things.find((thing) => thing.id === id) ?? null;
  renderMap();
  renderDetails();
  const quantity = $("quantity").value;
  const streams = state.selected?.datastreams ?? [];
  const first = streams.find((d) => d.quantity === quantity) ?? streams[0];
  if (first) showChart(first);
}

function renderDetails() {
  const thing = state.selected;
  const details = $("details");
  if (!thing) {
    state.detailsKey = null;
    details.replaceChildren(el("p", { className: "note" }, t("pickThing")));
    $("streams").replaceChildren();
    return;
  }
  // Live redraws change the values in place: a row being hovered or focused stays as it is.
  const key = [thing.id, getLanguage(), ...thing.datastreams.map((d) => d.id)].join(" ");
  if (state.detailsKey === key) {
    updateRows(thing);
    return;
  }
  state.detailsKey = key;
  details.replaceChildren(
    el("h2", {}, thingName(thing)),
    el(
      "p",
      { className: "note" },
      `${cityLabel(thing.city)} · ${domainLabel(thing.domain)} · ${thing.lat.toFixed(4)}, ${thing.lon.toFixed(4)}`,
    ),
  );
  const rows = thing.datastreams.map((d) => {
    const button = el("button", { type: "button", title: d.name }, datastreamTitle(d));
    button.onclick = () => showChart(state.datastreams.get(d.id) ?? d); // the current object after a reload
    return el(
      "tr",
      { dataset: { datastream: String(d.id) }, className: state.chart?.datastream.id === d.id ? "chosen" : "" },
      el("td", {}, button),
      el("td", { className: "value", title: d.unitName }, valueText(d)),
      el("td", { className: "time" }, timeText(d)),
    );
  });
  const head = el("tr", {}, el("th", {}, t("measurement")), el("th", {}, t("latest")), el("th", {}, t("time")));
  $("streams").replaceChildren(el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function valueText(datastream) {
  return datastream.latest ? `${formatNumber(datastream.latest.value)} ${datastream.unit}` : t("noValue");
}

function timeText(datastream) {
  return datastream.latest ? formatTime(datastream.latest.time) : "";
}

function updateRows(thing) {
  for (const datastream of thing.datastreams) {
    const row = $("streams").querySelector(`tr[data-datastream="${datastream.id}"]`);
    if (!row) continue;
    row.classList.toggle("chosen", state.chart?.datastream.id === datastream.id);
    row.querySelector("td.value").textContent = valueText(datastream);
    row.querySelector("td.time").textContent = timeText(datastream);
  }
}

// ---- chart -------------------------------------------------------------------------------------

function renderRanges() {
  const group = $("ranges");
  group.replaceChildren();
  for (const key of Object.keys(RANGES)) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = t("range")[key];
    button.className = key === state.range && !state.chart?.zoomed ? "active" : "";
    button.onclick = () => {
      state.range = key;
      if (state.chart) showChart(state.chart.datastream);
    };
    group.append(button);
  }
  if (state.chart?.zoomed) {
    const reset = document.createElement("button");
    reset.type = "button";
    reset.textContent = t("resetZoom");
    reset.onclick = () => showChart(state.chart.datastream);
    group.append(reset);
  }
}

async function showChart(datastream, from = null, to = null) {
  const zoomed = from !== null;
  to = to ?? new Date();
  from = from ?? new Date(to.getTime() - RANGES[state.range] * 3600 * 1000);
  const chart = { datastream, from, to, zoomed, series: null, plot: null };
  state.chart = chart;
  $("chart-area").hidden = false;
  $("chart-title").textContent = `${datastreamTitle(datastream)} (${datastream.unit}) – ${thingName(datastream.thing)}`;
  renderRanges();
  renderDetails();
  $("chart-note").textContent = t("loading");
  try {
    chart.series = await loadSeries(state.config.sta, datastream.id, from, to);
  } catch (error) {
    $("chart-note").textContent = String(error.message ?? error);
    return;
  }
  if (state.chart !== chart) return; // another chart was asked for meanwhile
  renderChart();
}

function renderChart() {
  const chart = state.chart;
  if (!chart?.series) return;
  const { series, datastream } = chart;
  const element = $("chart");
  if (series.times.length === 0 || series.count === 0) {
    element.replaceChildren();
    chart.plot = null;
    $("chart-note").textContent = t("noData");
    return;
  }
  chart.plot = drawChart(element, series, datastream.unit, (from, to) => showChart(datastream, from, to));
  const values = series.mode === "raw" ? series.values : series.highs;
  element.dataset.points = String(values.filter((v) => v !== null).length); // drawn points, for tests
  $("chart-note").textContent =
    series.mode === "raw" ? t("raw", series.count) : t("buckets", series.times.length, formatDuration(series.size));
}

// ---- live updates ------------------------------------------------------------------------------

function onObservation(datastreamId, observation) {
  const datastream = state.datastreams.get(datastreamId);
  if (!datastream) {
    scheduleReload(); // a Datastream (or Thing) created after the page loaded
    return;
  }
  const time = timeOf(observation.phenomenonTime);
  if (!datastream.latest || time >= datastream.latest.time) {
    datastream.latest = { value: observation.result, time };
  }
  state.liveCount += 1;
  state.fresh.add(datastreamId);
  scheduleRender();
  const chart = state.chart;
  if (chart?.plot && chart.datastream.id === datastreamId && !chart.zoomed && time >= chart.from) {
    appendPoint(chart.plot, chart.series, time.getTime() / 1000, observation.result);
    chart.series.count += 1;
    if (chart.series.mode === "raw") $("chart-note").textContent = t("raw", chart.series.count);
  }
}

// New Things and Datastreams (a device's first message) appear after a reload, at most every RELOAD_MS.
const RELOAD_MS = 10000;
let reloadTimer = null;

function scheduleReload() {
  reloadTimer ??= setTimeout(async () => {
    try {
      const first = state.things.length === 0;
      await reloadThings();
      renderTexts();
      if (first) renderMap({ fit: true });
    } finally {
      reloadTimer = null;
    }
  }, RELOAD_MS);
}

// Many sensors send often: redraw the map and the panel at most every RENDER_MS, not per event.
const RENDER_MS = 300;
let renderTimer = null;

function scheduleRender() {
  renderTimer ??= setTimeout(() => {
    renderTimer = null;
    renderLive("open");
    renderMap();
    if (state.selected) {
      renderDetails();
      for (const id of state.fresh) {
        const row = document.querySelector(`tr[data-datastream="${id}"]`);
        if (!row) continue;
        row.classList.remove("fresh");
        void row.offsetWidth; // restart the highlight's animation
        row.classList.add("fresh");
      }
    }
    state.fresh.clear();
  }, RENDER_MS);
}

function renderLive(status) {
  const live = $("live");
  live.dataset.state = status;
  if (status === "open") live.textContent = state.liveCount ? t("liveCount", state.liveCount) : t("liveOn");
  else live.textContent = status === "closed" ? t("liveOff") : "…";
}

// ---- language ----------------------------------------------------------------------------------

function renderTexts() {
  for (const element of document.querySelectorAll("[data-text]")) element.textContent = t(element.dataset.text);
  $("language").textContent = t("otherLanguage");
  renderFilters();
  renderMap();
  renderDetails();
  renderRanges();
  renderChart();
  renderLive($("live").dataset.state);
}

// ---- start -------------------------------------------------------------------------------------

async function start() {
  setLanguage(new URLSearchParams(location.search).get("lang") ?? getLanguage()); // ?lang=de or en
  renderTexts();
  $("details").replaceChildren(el("p", { className: "note" }, t("loading")));
  try {
    state.config = await getJson("viewer-config.json");
  } catch {
    // hosted without the hub's config: the API and the stream beside the page, no base map
    state.config = { sta: new URL("v1.1", location.href).href, live: new URL("live", location.href).href };
  }
  // ?sta=https://other.example.org/v1.1[&live=https://other.example.org/live] reads another hub.
  const params = new URLSearchParams(location.search);
  if (params.get("sta")) state.config = { ...state.config, sta: params.get("sta"), live: params.get("live") };
  addBaseMap(state.config);
  try {
    await reloadThings();
  } catch (error) {
    $("details").replaceChildren(el("p", { className: "error" }, `${t("loadFailed")}${error.message ?? error}`));
    return;
  }
  renderFilters();
  renderMap({ fit: true });
  renderDetails();
  for (const id of ["city", "domain", "quantity"]) $(id).onchange = () => renderMap({ fit: id !== "quantity" });
  $("language").onclick = () => {
    setLanguage(getLanguage() === "de" ? "en" : "de");
    renderTexts();
  };
  if (state.config.live) {
    listen(state.config.live, {
      onObservation,
      onState: renderLive,
      onGap: scheduleReload, // the hub dropped events for us: the latest values may be stale
    });
  }
  document.body.dataset.ready = "true"; // for tests and for anyone embedding the page
}

start();
