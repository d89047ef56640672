// The HTML report of model replays (`qconform check --report`): per model, its layer chain
// as a plot of each layer's error in output quanta — isolated (the layer on its recorded
// input) and chained (every covered layer replaced, each meeting the errors of those before
// it), for the integer implementation and the reference — coloured by verdict, then a table
// of the layers, each with its fixture and the command that replays it. One self-contained
// file, like the tolerance report.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/files.h"
#include "reports/html.h"
#include "reports/report.h"

namespace qconform {
namespace {

using nlohmann::json;

using html::escape;
using html::general;


double number(const json& v) {
  if (v.is_number()) return v.get<double>();
  return INFINITY;  // "inf": a bound of zero, exceeded
}

// The isolated comparison of one side against LibTorch's recording ("quantized[...] vs libtorch[...]").
const json* isolated(const json& layer, const std::string& side) {
  if (!layer.contains("isolated")) return nullptr;
  for (const json& c : layer.at("isolated").at("comparisons"))
    if (c.at("pair").get<std::string>().rfind(side, 0) == 0 && c.at("pair").get<std::string>().find("libtorch") != std::string::npos)
      return &c;
  return nullptr;
}

// Error in quanta on a log axis: 0 on its own line at the bottom, then 1/4 ... 4096 quanta.
double y_of(double quanta, double height) {
  const double lo = -2, hi = 12;  // log2 range
  if (!(quanta > 0)) return height - 4;
  const double l = std::clamp(std::log2(quanta), lo, hi);
  return height - 22 - (l - lo) / (hi - lo) * (height - 34);
}

std::string chain_svg(const json& model) {
  std::vector<const json*> layers;
  for (const json& l : model.at("layers"))
    if (l.at("covered").get<bool>()) layers.push_back(&l);
  const double width = std::max<double>(960, 10.0 * layers.size() + 60), height = 240, left = 48;
  const double step = layers.size() > 1 ? (width - left - 12) / (layers.size() - 1) : 0;
  std::ostringstream svg;
  svg << "<svg class=\"chain\" viewBox=\"0 0 " << width << " " << height + 44 << "\" width=\"" << width
      << "\" role=\"img\" aria-label=\"error per layer in output quanta\">";
  for (double q : {0.25, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0}) {
    const double y = y_of(q, height);
    svg << "<line x1=\"" << left << "\" x2=\"" << width << "\" y1=\"" << y << "\" y2=\"" << y
        << "\" class=\"grid\"/><text x=\"" << left - 4 << "\" y=\"" << y + 3 << "\" class=\"axis\">" << general(q)
        << "</text>";
  }
  svg << "<text x=\"" << left - 4 << "\" y=\"" << height - 1 << "\" class=\"axis\">0</text>";
  struct Series {
    const char* name;
    const char* css;
    std::function<std::pair<bool, std::pair<double, bool>>(const json&)> point;  // (has, (quanta, ok))
    bool line;
  };
  const auto chained = [](const char* key) {
    return [key](const json& l) -> std::pair<bool, std::pair<double, bool>> {
      if (!l.contains(key)) return {false, {0, true}};
      return {true, {number(l.at(key).at("error_quanta")), l.at(key).at("within_bound").get<bool>()}};
    };
  };
  const auto alone = [](const char* side) {
    return [side](const json& l) -> std::pair<bool, std::pair<double, bool>> {
      const json* c = isolated(l, side);
      if (!c) return {false, {0, true}};
      return {true, {number((*c).at("error_quanta")), (*c).at("passed").get<bool>()}};
    };
  };
  const std::vector<Series> series{{"integer, chained", "int", chained("integer_chain"), true},
                                   {"reference, chained", "ref", chained("reference_chain"), true},
                                   {"integer, isolated", "int", alone("quantized"), false},
                                   {"reference, isolated", "ref", alone("reference"), false}};
  for (const Series& s : series) {
    std::string path;
    for (size_t i = 0; i < layers.size(); ++i) {
      const auto [has, point] = s.point(*layers[i]);
      if (!has) continue;
      const double x = left + step * i, y = y_of(point.first, height);
      if (s.line) path += (path.empty() ? "M" : " L") + general(x) + "," + general(y);
      svg << "<a href=\"#" << escape(model.at("name").get<std::string>()) << "-layer-" << i << "\"><"
          << (s.line ? "circle r=\"3\"" : "rect width=\"5\" height=\"5\"") << " class=\"" << s.css
          << (point.second ? " ok" : " bad") << "\" " << (s.line ? "cx" : "x") << "=\"" << (s.line ? x : x - 2.5)
          << "\" " << (s.line ? "cy" : "y") << "=\"" << (s.line ? y : y - 2.5) << "\"><title>"
          << escape((*layers[i]).at("layer").get<std::string>()) << ": " << s.name << ", " << general(point.first)
          << " quanta" << (point.second ? "" : ", beyond its bound") << "</title></"
          << (s.line ? "circle" : "rect") << "></a>";
    }
    if (!path.empty()) svg << "<path d=\"" << path << "\" class=\"line " << s.css << "\"/>";
  }
  svg << "<text x=\"" << left << "\" y=\"" << height + 18
      << "\" class=\"legend\">covered layers in execution order; y: error in output quanta against LibTorch's "
         "recording of the layer (log scale)</text><text x=\"" << left << "\" y=\"" << height + 34
      << "\" class=\"legend\">line and circles: chained run; squares: the layer alone on its recorded input; blue: "
         "integer, orange: reference; red outline: beyond the layer's bound</text></svg>";
  return svg.str();
}

}  // namespace

std::string render_model_report(const json& verdicts) {
  std::ostringstream html;
  html << "<!doctype html><html><head><meta charset=\"utf-8\"><title>qconform model replay</title><style>"
          "body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:17px;margin-top:32px}"
          "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}"
          "tr.fail td{background:#fdd}.grid{stroke:#eee}.axis{font-size:9px;text-anchor:end;fill:#777}"
          ".legend{font-size:10px;fill:#555}.line{fill:none;stroke-width:1.2}.line.int{stroke:#1f6fd1}"
          ".line.ref{stroke:#e08a16}circle.int,rect.int{fill:#1f6fd1}circle.ref,rect.ref{fill:#e08a16}"
          ".bad{stroke:#d00;stroke-width:2}code{font-size:11px}.pass{color:#070}.failtext{color:#b00}"
          "</style></head><body><h1>qconform model replay</h1>";
  for (const json& model : verdicts) {
    const std::string name = model.at("name").get<std::string>();
    html << "<h2 id=\"" << escape(name) << "\">" << escape(name) << " — " << escape(model.value("pytorch_type", ""))
         << " on " << escape(model.value("engine", "")) << ": <span class=\""
         << (model.at("passed").get<bool>() ? "pass\">every covered layer passes" : "failtext\">layers fail") << "</span></h2>";
    if (model.contains("error")) {
      html << "<p class=\"failtext\">cannot replay: " << escape(model.at("error").get<std::string>()) << "</p>";
      continue;
    }
    html << "<p>" << (model.at("fully_covered").get<bool>() ? "Fully covered." : "Not covered:");
    for (const json& u : model.at("uncovered"))
      html << " " << escape(u.at("pytorch_type").get<std::string>()) << " ×" << u.at("count");
    const auto at = [&](const char* key) {
      return model.at(key).is_null() ? std::string("nowhere") : escape(model.at(key).get<std::string>());
    };
    html << " First failing layer: " << at("first_failing_layer") << ". The integer chain leaves its bound: "
         << at("integer_chain_leaves_bound_at") << " (model output max |diff| "
         << general(model.at("integer_chain_output_max_abs_error").get<double>()) << "); the reference chain: "
         << at("reference_chain_leaves_bound_at") << " (model output max |diff| "
         << general(model.at("reference_chain_output_max_abs_error").get<double>()) << ").";
    if (model.contains("chain_note")) html << " Chained runs: " << escape(model.at("chain_note").get<std::string>());
    const json& seconds = model.at("seconds");
    html << " Time: isolated layers " << general(seconds.at("isolated_layers").get<double>()) << " s, integer chain "
         << general(seconds.at("integer_chain").get<double>()) << " s, reference chain "
         << general(seconds.at("reference_chain").get<double>()) << " s; LibTorch's forward "
         << general(seconds.at("libtorch_forward").get<double>()) << " s.</p>";
    html << chain_svg(model);
    html << "<table><tr><th>#</th><th>layer</th><th>kind</th><th>isolated</th><th>integer chain: quanta, of bound</th>"
            "<th>reference chain: quanta, of bound</th><th>fixture (rerun)</th></tr>";
    size_t covered_index = 0;
    for (size_t i = 0; i < model.at("layers").size(); ++i) {
      const json& l = model.at("layers")[i];
      if (!l.at("covered").get<bool>()) continue;
      const bool ok = l.at("isolated").at("passed").get<bool>();
      html << "<tr id=\"" << escape(name) << "-layer-" << covered_index++ << "\" class=\"" << (ok ? "" : "fail")
           << "\"><td>" << i << "</td><td>" << escape(l.at("layer").get<std::string>()) << "</td><td>"
           << escape(l.at("kind").get<std::string>()) << "</td><td>" << (ok ? "pass" : "FAIL") << ", worst "
           << general(number(l.at("isolated").at("worst_bound_fraction"))) << " of bound";
      if (l.at("isolated").contains("failure"))
        html << "<br><code>" << escape(l.at("isolated").at("failure").get<std::string>()) << "</code>";
      html << "</td>";
      for (const char* key : {"integer_chain", "reference_chain"}) {
        html << "<td>";
        if (l.contains(key))
          html << (l.at(key).at("within_bound").get<bool>() ? "" : "<b class=\"failtext\">beyond</b> ")
               << general(number(l.at(key).at("error_quanta"))) << ", " << general(number(l.at(key).at("bound_fraction")));
        html << "</td>";
      }
      html << "<td><code>" << escape(l.at("isolated").at("rerun").get<std::string>()) << "</code></td></tr>";
    }
    html << "</table>";
  }
  html << "</body></html>\n";
  return html.str();
}

void write_model_report(const json& verdicts, const std::string& path) {
  write_file_atomically(path, render_model_report(verdicts), "model report");
}

}  // namespace qconform
