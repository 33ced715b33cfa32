// SPDX-License-Identifier: Apache-2.0
// The SensorThings API requests the viewer makes. Every one is a plain public STA v1.1 request;
// docs/viewer.md lists them.

/** `base?name=value&...`, each value percent-encoded ($ and ; and + and / included). */
export function url(base, params = {}) {
  const query = Object.entries(params)
    .map(([name, value]) => `${name}=${encodeURIComponent(value)}`)
    .join("&");
  return query ? `${base}?${query}` : base;
}

export async function getJson(address, options = {}) {
  const response = await fetch(address, { headers: { Accept: "application/json" }, ...options });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).message ?? message;
    } catch {
      // not a JSON error body: keep the status line
    }
    throw new Error(message);
  }
  return response.json();
}

/** Every entity of a collection, following @iot.nextLink page by page. */
export async function getAll(address) {
  const entities = [];
  while (address) {
    const page = await getJson(address);
    entities.push(...page.value);
    address = page["@iot.nextLink"];
  }
  return entities;
}

/** "2026-03-05T10:00:00Z" or an interval "start/end": the instant to plot (its start). */
export function timeOf(phenomenonTime) {
  return new Date(String(phenomenonTime).split("/")[0]);
}

/**
 * All Things with their first Location, their Datastreams (unit, ObservedProperty) and each
 * Datastream's latest Observation, in one request per page of 200 Things.
 */
export async function loadThings(sta) {
  const latest = "Observations($select=result,phenomenonTime;$orderby=phenomenonTime desc;$top=1)";
  return getAll(
    url(`${sta}/Things`, {
      $select: "id,name,description,properties",
      $expand:
        "Locations($select=location;$top=1)," +
        `Datastreams($select=id,name,unitOfMeasurement,properties;$top=100;$expand=ObservedProperty($select=id,name),${latest})`,
      $top: 200,
    }),
  );
}

const RAW_LIMIT = 3000; // up to this many Observations in a range are drawn one by one (2 days per minute)
const BUCKETS = 150; // otherwise the range is cut into this many periods, each drawn as lowest and highest

/**
 * The Observations of one Datastream between `from` and `to` (Dates), ready to plot.
 * First a count probe ($top=0, $count=true). Few: fetched raw in the compact dataArray format.
 * Many: one $batch request asks, for each of BUCKETS periods, for the Observation with the
 * lowest and the one with the highest result ($orderby=result;$top=1): 300 tiny indexed
 * queries in one round trip instead of downloading every point.
 * Returns {mode: "raw", times, values} or {mode: "buckets", times, lows, highs, size} (times in seconds).
 */
export async function loadSeries(sta, datastreamId, from, to) {
  const path = `Datastreams(${datastreamId})/Observations`;
  const inRange = (a, b) => `phenomenonTime ge ${a.toISOString()} and phenomenonTime lt ${b.toISOString()}`;
  const probe = await getJson(url(`${sta}/${path}`, { $filter: inRange(from, to), $count: "true", $top: 0 }));
  const count = probe["@iot.count"];
  if (count <= RAW_LIMIT) {
    const page = await getJson(
      url(`${sta}/${path}`, {
        $filter: inRange(from, to),
        $orderby: "phenomenonTime asc",
        $select: "phenomenonTime,result",
        $resultFormat: "dataArray",
        $top: RAW_LIMIT,
      }),
    );
    const block = page.value[0] ?? { components: ["phenomenonTime", "result"], dataArray: [] };
    const timeAt = block.components.indexOf("phenomenonTime");
    const resultAt = block.components.indexOf("result");
    const rows = block.dataArray.filter((row) => typeof row[resultAt] === "number");
    return {
      mode: "raw",
      count,
      times: rows.map((row) => timeOf(row[timeAt]).getTime() / 1000),
      values: rows.map((row) => row[resultAt]),
    };
  }
  // One $apply request (docs/aggregates.md); a server without it gets the $batch below.
  const aggregated = await loadAggregates(sta, path, from, to).catch(() => null);
  if (aggregated) return { ...aggregated, count };
  const size = (to - from) / BUCKETS;
  const requests = [];
  for (let i = 0; i < BUCKETS; i++) {
    const start = new Date(from.getTime() + i * size);
    const end = new Date(from.getTime() + (i + 1) * size);
    for (const order of ["asc", "desc"]) {
      requests.push({
        id: `${i}-${order}`,
        method: "get",
        url: url(path, {
          $filter: `${inRange(start, end)} and result ne null`,
          $orderby: `result ${order}`,
          $select: "result",
          $top: 1,
        }),
      });
    }
  }
  const answer = await getJson(`${sta}/$batch`, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: JSON.stringify({ requests }),
  });
  const byId = new Map(answer.responses.map((r) => [r.id, r.status === 200 ? r.body.value[0]?.result : undefined]));
  const numberOrNull = (v) => (typeof v === "number" ? v : null);
  const times = [];
  const lows = [];
  const highs = [];
  for (let i = 0; i < BUCKETS; i++) {
    times.push((from.getTime() + (i + 0.5) * size) / 1000);
    lows.push(numberOrNull(byId.get(`${i}-asc`)));
    highs.push(numberOrNull(byId.get(`${i}-desc`)));
  }
  return { mode: "buckets", count, times, lows, highs, size };
}

const WIDTHS = [["PT1M", 60], ["PT5M", 300], ["PT15M", 900], ["PT1H", 3600], ["PT3H", 10800],
  ["PT6H", 21600], ["P1D", 86400], ["P7D", 604800]]; // prettier-ignore
const MAX_BUCKETS = 400;

/**
 * Lowest and highest result per bucket of the smallest width giving at most MAX_BUCKETS, in one
 * `$apply` request answered from the hub's rollups; empty buckets become gaps (null).
 */
async function loadAggregates(sta, path, from, to) {
  const [width, seconds] = WIDTHS.find(([, s]) => (to - from) / 1000 / s <= MAX_BUCKETS) ?? WIDTHS.at(-1);
  const apply =
    `filter(phenomenonTime ge ${from.toISOString()} and phenomenonTime lt ${to.toISOString()})` +
    `/compute(twinhub.bucket(phenomenonTime,'${width}') as bucket)` +
    "/groupby((bucket),aggregate(result with min as low,result with max as high))";
  const rows = await getAll(url(`${sta}/${path}`, { $apply: apply, $top: MAX_BUCKETS + 10 }));
  const series = { mode: "buckets", times: [], lows: [], highs: [], size: seconds * 1000 };
  let last = null;
  for (const row of rows) {
    const start = new Date(row.bucket).getTime() / 1000;
    if (last !== null && start - last > seconds) {
      series.times.push(last + seconds * 1.5); // a gap: uPlot breaks the line at nulls
      series.lows.push(null);
      series.highs.push(null);
    }
    series.times.push(start + seconds / 2);
    series.lows.push(row.low);
    series.highs.push(row.high);
    last = start;
  }
  return series;
}

/** The Datastream id in a topic such as v1.1/Datastreams(7)/Observations, else null. */
export function datastreamOfTopic(topic) {
  const match = /\/Datastreams\((\d+)\)\/Observations$/.exec(topic);
  return match ? Number(match[1]) : null;
}

/**
 * Listen to new Observations of every Datastream through the hub's server-sent events
 * (GET /live?topic=v1.1/+/Observations). `onObservation(datastreamId, observation)` per event;
 * `onState("open" | "closed")`; `onGap()` when the hub dropped events for this slow client.
 */
export function listen(liveUrl, { onObservation, onState, onGap }) {
  const source = new EventSource(url(liveUrl, { topic: "v1.1/+/Observations" }));
  source.onopen = () => onState("open");
  source.onerror = () => onState("closed"); // EventSource reconnects by itself
  source.onmessage = (message) => {
    const { topic, payload } = JSON.parse(message.data);
    const datastreamId = datastreamOfTopic(topic);
    if (datastreamId !== null) onObservation(datastreamId, payload);
  };
  source.addEventListener("dropped", () => onGap());
  return source;
}
