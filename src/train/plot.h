// A small SVG writer for the training plots: line charts (loss curves, scaling
// curves; optional log-x) and a per-layer expert-load bar chart.
#pragma once
#include <string>
#include <vector>

namespace moe::train {

struct Series {
  std::string label;
  std::vector<double> x, y;
};

void write_line_chart(const std::string& path, const std::string& title, const std::string& xlabel,
                      const std::string& ylabel, const std::vector<Series>& series, bool log_x = false);

// load[layer][expert] as fractions of the layer's routed tokens; one bar group per layer.
void write_load_chart(const std::string& path, const std::string& title,
                      const std::vector<std::vector<double>>& load);

}  // namespace moe::train
