// uPlot charts (web/static/web/vendor/uplot, loaded as a classic script before this module).
// Values become numbers here only to be placed on the canvas; the figures shown come from decimal.js.

const UP = "#137333";
const DOWN = "#b3261e";

function compact(value) {
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6) return (value / 1e6).toFixed(2) + "M";
  if (magnitude >= 1e4) return (value / 1e3).toFixed(1) + "k";
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

const seconds = (iso) => Date.parse(iso) / 1000;

function width(el) {
  return Math.max(280, Math.floor(el.getBoundingClientRect().width || el.clientWidth || 600));
}

// The chart's width, read once when the chart is made (the page's empty skeleton: a cheap layout)
// and then kept by a ResizeObserver: a render never reads layout itself, so drawing the first
// data does not force a synchronous layout of every row the other panels just inserted, and the
// observer's first callback (same width) does not draw each chart a second time.
function sized(el, getPlot, height) {
  const size = { width: width(el) };
  new ResizeObserver(() => {
    const next = width(el); // after layout: no forced one
    if (next === size.width) return;
    size.width = next;
    const plot = getPlot();
    if (plot) plot.setSize({ width: next, height });
  }).observe(el);
  return size;
}

// Scale ranges that stay sensible for one point (or one value): uPlot widens a zero-width range
// by the value's magnitude (one 10,000 equity point: a y axis from 0 to 20,000; one time: 1,000
// days), so the chart would show a flat line lost in an empty frame.
const HOUR = 3600;

// x: uPlot itself turns one time into a range of 86,400,000 s before asking (so look at the data).
export function xRange(u, min, max) {
  const times = u.data[0];
  if (times.length && times[0] === times[times.length - 1]) return [times[0] - HOUR, times[0] + HOUR];
  return [min, max];
}

export function yRange(u, min, max) {
  if (min === null || min === undefined) return [min, max];
  if (min === max) {
    const half = Math.max(Math.abs(min) * 0.01, 1); // ±1 % of the value (±1 around zero)
    return [min - half, max + half];
  }
  return window.uPlot.rangeNum(min, max, 0.1, true); // uPlot's own default for a y scale
}

export function equityChart(el) {
  const height = 240;
  let plot = null;
  const size = sized(el, () => plot, height);
  return {
    get plot() {
      return plot;
    },
    render(points) {
      const data = [points.map((p) => seconds(p.t)), points.map((p) => Number(p.equity))];
      if (plot) {
        plot.setData(data);
        return;
      }
      plot = new window.uPlot(
        {
          width: size.width,
          height,
          scales: { x: { time: true, range: xRange }, y: { range: yRange } },
          series: [
            {},
            { label: "Equity", stroke: "#1f6feb", width: 1.5, fill: "rgba(31,111,235,0.08)",
              value: (u, v) => (v === null ? "–" : v.toFixed(2)) },
          ],
          axes: [{}, { size: 64, values: (u, values) => values.map(compact) }],
          cursor: { drag: { x: true, y: false } },
        },
        data,
        el,
      );
    },
  };
}

function candlesPlugin(source) {
  return {
    hooks: {
      draw: [
        (u) => {
          const { open, high, low, close } = source();
          const times = u.data[0];
          if (!times.length) return;
          const [first, last] = u.series[0].idxs || [0, times.length - 1];
          const ctx = u.ctx;
          const column = u.bbox.width / Math.max(1, last - first + 1);
          const body = Math.max(1, Math.min(14 * devicePixelRatio, column * 0.7));
          ctx.save();
          ctx.beginPath();
          ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
          ctx.clip();
          ctx.lineWidth = Math.max(1, devicePixelRatio);
          for (let i = first; i <= last; i++) {
            if (open[i] === null) continue; // the forming candle's slot: fills only
            const x = Math.round(u.valToPos(times[i], "x", true));
            const yOpen = u.valToPos(open[i], "y", true);
            const yClose = u.valToPos(close[i], "y", true);
            const color = close[i] >= open[i] ? UP : DOWN;
            ctx.strokeStyle = color;
            ctx.fillStyle = color;
            ctx.beginPath();
            ctx.moveTo(x, u.valToPos(high[i], "y", true));
            ctx.lineTo(x, u.valToPos(low[i], "y", true));
            ctx.stroke();
            ctx.fillRect(x - body / 2, Math.min(yOpen, yClose), body, Math.max(1, Math.abs(yClose - yOpen)));
          }
          ctx.restore();
        },
      ],
    },
  };
}

// candles: [[iso, open, high, low, close, volume], ...] (closed ones); indicator: {time: [...],
// values: [...]}; fills: trade rows. Fills are placed on the candle that contains them; fills after
// the last closed candle (a bot trading now: the forming candle) get a slot of their own, with no
// candle drawn, so a live fill shows and is counted at once.
export function candleChart(el) {
  const height = 320;
  let plot = null;
  let ohlc = { open: [], high: [], low: [], close: [] };
  const size = sized(el, () => plot, height);
  return {
    get plot() {
      return plot;
    },
    render({ candles, indicator, indicatorLabel, fills, timeframeSeconds }) {
      const times = candles.map((c) => seconds(c[0]));
      ohlc = {
        open: candles.map((c) => Number(c[1])),
        high: candles.map((c) => Number(c[2])),
        low: candles.map((c) => Number(c[3])),
        close: candles.map((c) => Number(c[4])),
      };
      const bucket = (fill) => Math.floor(seconds(fill.executed_at) / timeframeSeconds) * timeframeSeconds;
      const lastClosed = times.length ? times[times.length - 1] : -Infinity;
      const later = [...new Set(fills.map(bucket).filter((t) => t > lastClosed))].sort((a, b) => a - b);
      for (const t of later) {
        times.push(t);
        for (const series of Object.values(ohlc)) series.push(null);
      }
      const index = new Map(times.map((t, i) => [t, i]));
      const line = times.map(() => null);
      (indicator.time || []).forEach((iso, k) => {
        const i = index.get(seconds(iso));
        if (i !== undefined) line[i] = indicator.values[k];
      });
      const buys = times.map(() => null);
      const sells = times.map(() => null);
      let placed = 0;
      for (const fill of fills) {
        const i = index.get(bucket(fill));
        if (i === undefined) continue;
        (fill.side === "buy" ? buys : sells)[i] = Number(fill.price);
        placed += 1;
      }
      const lows = ohlc.low.filter(Number.isFinite);
      const highs = ohlc.high.filter(Number.isFinite);
      const lo = lows.length ? Math.min(...lows) : 0;
      const hi = highs.length ? Math.max(...highs) : 1;
      const pad = (hi - lo) * 0.05 || 1;
      const data = [times, ohlc.close, line, buys, sells];
      if (plot) plot.destroy();
      plot = new window.uPlot(
        {
          width: size.width,
          height,
          scales: { x: { time: true, range: xRange }, y: { range: () => [lo - pad, hi + pad] } },
          series: [
            {},
            { label: "Close", stroke: "transparent", points: { show: false } },
            { label: indicatorLabel, stroke: "#8250df", width: 1.5, spanGaps: true },
            { label: "Buy fills", stroke: UP, fill: UP, paths: () => null, points: { show: true, size: 9, fill: UP } },
            { label: "Sell fills", stroke: DOWN, fill: DOWN, paths: () => null, points: { show: true, size: 9, fill: DOWN } },
          ],
          axes: [{}, { size: 64, values: (u, values) => values.map(compact) }],
          plugins: [candlesPlugin(() => ohlc)],
        },
        data,
        el,
      );
      return { candles: times.length, fills: placed };
    },
  };
}
