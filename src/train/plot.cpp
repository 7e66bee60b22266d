// SVG line and bar charts (see plot.h). Plain SVG 1.1, no scripts or fonts beyond sans-serif.
#include "train/plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "base/error.h"

namespace moe::train {
namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
constexpr double W = 720, Hh = 420, L = 70, R = 160, T = 40, Bm = 50;

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}

void save(const std::string& path, const std::string& body) {
  std::ofstream out(path);
  MOE_CHECK(out.good(), "cannot write plot '{}'", path);
  out << fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
                     "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" "
                     "height=\"100%\" fill=\"white\"/>\n",
                     W, Hh)
      << body << "</svg>\n";
}

}  // namespace

void write_line_chart(const std::string& path, const std::string& title, const std::string& xlabel,
                      const std::string& ylabel, const std::vector<Series>& series, bool log_x) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto fx = [&](double x) { return log_x ? std::log10(std::max(x, 1e-30)) : x; };
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, fx(s.x[i])), x1 = std::max(x1, fx(s.x[i]));
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  if (!(x1 > x0)) x0 -= 1, x1 += 1;
  if (!(y1 > y0)) y0 -= 1, y1 += 1;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return L + (fx(x) - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return Hh - Bm - (y - y0) / (y1 - y0) * (Hh - T - Bm); };
  std::string b = fmt::format("<text x=\"{}\" y=\"22\" font-size=\"15\">{}</text>\n", L, esc(title));
  b += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", L, T,
                   W - L - R, Hh - T - Bm);
  for (int i = 0; i <= 4; ++i) {
    const double yv = y0 + (y1 - y0) * i / 4, xv = x0 + (x1 - x0) * i / 4;
    const double xr = log_x ? std::pow(10.0, xv) : xv;
    b += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.3g}</text>\n", L - 4, py(yv) + 4, yv);
    b += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>\n", L, W - R, py(yv));
    b += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.3g}</text>\n",
                     L + (W - L - R) * i / 4, Hh - Bm + 16, xr);
  }
  b += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", L + (W - L - R) / 2, Hh - 12, esc(xlabel));
  b += fmt::format("<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">{}</text>\n",
                   (Hh) / 2, Hh / 2, esc(ylabel));
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const char* c = kColors[k % 8];
    std::string pts;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i])) pts += fmt::format("{:.1f},{:.1f} ", px(s.x[i]), py(s.y[i]));
    b += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"{}\"/>\n", c, pts);
    if (s.x.size() <= 12)
      for (size_t i = 0; i < s.x.size(); ++i)
        b += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(s.x[i]), py(s.y[i]), c);
    b += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"3\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
                     W - R + 10, T + 10 + 18 * k, c, W - R + 26, T + 15 + 18 * k, esc(s.label));
  }
  save(path, b);
}

void write_load_chart(const std::string& path, const std::string& title,
                      const std::vector<std::vector<double>>& load) {
  double mx = 0;
  for (const auto& l : load)
    for (double v : l) mx = std::max(mx, v);
  if (mx <= 0) mx = 1;
  std::string b = fmt::format("<text x=\"{}\" y=\"22\" font-size=\"15\">{}</text>\n", L, esc(title));
  const double gw = (W - L - 20) / std::max<size_t>(1, load.size());
  for (size_t il = 0; il < load.size(); ++il) {
    const auto& l = load[il];
    const double bw = gw * 0.8 / std::max<size_t>(1, l.size());
    const double uni = l.empty() ? 0 : 1.0 / double(l.size());
    for (size_t e = 0; e < l.size(); ++e) {
      const double h = l[e] / mx * (Hh - T - Bm);
      b += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>\n",
                       L + il * gw + e * bw, Hh - Bm - h, bw * 0.9, h, kColors[il % 8]);
    }
    const double uy = Hh - Bm - uni / mx * (Hh - T - Bm);
    b += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"black\" stroke-dasharray=\"4 3\"/>\n",
                     L + il * gw, L + il * gw + gw * 0.8, uy, uy);
    b += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">layer {}</text>\n", L + il * gw + gw * 0.4, Hh - Bm + 16, il);
  }
  b += fmt::format("<text x=\"{}\" y=\"{}\">fraction of routed tokens per expert (dashed: uniform); max {:.3f}</text>\n",
                   L, Hh - 12, mx);
  save(path, b);
}

}  // namespace moe::train
