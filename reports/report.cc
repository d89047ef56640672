#include "reports/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "reports/html.h"

namespace qconform {
namespace {

using nlohmann::json;

using html::escape;
using html::general;

std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string fixed(double v, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, v);
  return buffer;
}


std::string anchor(const json& cell) {
  std::string id = "cell-" + str(cell.at("kind")) + "-" + str(cell.at("pair"));
  for (char& c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
  return id;
}

bool cell_passed(const json& cell) { return cell.at("passed") == cell.at("cases"); }

// How far the worst case went toward its bound, as the cell shows it.
std::string worst_text(const json& cell) {
  const double fraction = cell.at("worst").at("bound_fraction").get<double>();
  if (fraction < 0) return "beyond a zero bound";
  if (fraction == 0) return "bit-exact";
  // Truncated, not rounded: a case just under its bound must not read as "1".
  if (fraction < 1) return fixed(std::floor(fraction * 1000) / 1000, 3) + " of bound";
  return general(fraction) + " of bound";
}

// Histogram of each case's worst error as a fraction of its bound.
std::string histogram_svg(const json& fractions) {
  const std::vector<std::string> labels{"0", ".1", ".2", ".3", ".4", ".5", ".6", ".7", ".8", ".9", "1", ">1"};
  std::vector<int> counts(12, 0);
  for (const auto& f : fractions) {
    const double v = f.get<double>();
    if (v < 0 || v > 1) ++counts[11];
    else if (v == 0) ++counts[0];
    else ++counts[std::min(10, 1 + static_cast<int>(std::floor(v * 10 - 1e-12)))];
  }
  const int peak = std::max(1, *std::max_element(counts.begin(), counts.end()));
  std::ostringstream svg;
  svg << "<svg class=\"hist\" viewBox=\"0 0 372 110\" role=\"img\" aria-label=\"histogram of worst error per case, "
         "as a fraction of the bound\">";
  for (int i = 0; i < 12; ++i) {
    const double h = 72.0 * counts[i] / peak;  // headroom for the count above the tallest bar
    const char* fill = i == 0 ? "#2e7d32" : i == 11 ? "#c62828" : "#5c7cfa";
    svg << "<rect x=\"" << 6 + i * 30 << "\" y=\"" << fixed(88 - h, 1) << "\" width=\"24\" height=\"" << fixed(h, 1)
        << "\" fill=\"" << fill << "\"><title>" << counts[i] << " cases</title></rect>";
    if (counts[i]) svg << "<text x=\"" << 18 + i * 30 << "\" y=\"" << fixed(84 - h, 1) << "\" class=\"n\">" << counts[i] << "</text>";
    svg << "<text x=\"" << 18 + i * 30 << "\" y=\"104\" class=\"l\">" << labels[i] << "</text>";
  }
  svg << "</svg>";
  return svg.str();
}

const char* kStyle = R"(
:root{--ok:#e6f4ea;--ok-b:#2e7d32;--bad:#fdecea;--bad-b:#c62828;--na:#f4f4f5;--ink:#1f2328;--muted:#636c76}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);margin:0;background:#fafafa}
header{background:#1f2937;color:#fff;padding:18px 28px}header h1{margin:0 0 6px;font-size:20px}
header .verdict{font-size:15px;font-weight:600}header .verdict.ok{color:#86efac}header .verdict.bad{color:#fca5a5}
main{padding:18px 28px;max-width:1400px}section{margin:0 0 28px}h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:4px}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:6px 18px;margin-top:10px;font-size:13px;color:#d1d5db}
.facts b{color:#fff;font-weight:600}
table{border-collapse:collapse;background:#fff;font-size:13px}th,td{border:1px solid #e3e3e3;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;position:sticky;top:0;cursor:pointer;user-select:none}th.nosort{cursor:default}
td.cell{min-width:120px}td.cell a{color:inherit;text-decoration:none;display:block}
td.pass{background:var(--ok);border-left:3px solid var(--ok-b)}td.fail{background:var(--bad);border-left:3px solid var(--bad-b);font-weight:600}
td.na{background:var(--na);color:#aaa}.small{font-size:12px;color:var(--muted)}
.detail{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:12px 16px;margin:12px 0}
.detail.fail{border-left:4px solid var(--bad-b)}.detail.pass{border-left:4px solid var(--ok-b)}
.detail h3{margin:0 0 6px;font-size:15px}code,pre{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;border-radius:4px}
pre{padding:8px;white-space:pre-wrap;word-break:break-all;margin:6px 0}.hist{width:372px;height:110px}
.hist .n{font-size:9px;text-anchor:middle;fill:#333}.hist .l{font-size:10px;text-anchor:middle;fill:#666}
.cols{display:flex;gap:24px;flex-wrap:wrap}.cols>div{min-width:260px}
.scroll{overflow-x:auto;max-width:100%}#filter{padding:6px 10px;width:320px;border:1px solid #ccc;border-radius:4px;margin-bottom:8px}
.mismatch{color:var(--bad-b);font-weight:600}
)";

// Filter rows by text; sort a table by a clicked header (numbers numerically).
const char* kScript = R"(
document.getElementById('filter').addEventListener('input',function(e){
  var q=e.target.value.toLowerCase();
  document.querySelectorAll('table.filterable tbody tr').forEach(function(r){
    r.style.display=r.textContent.toLowerCase().indexOf(q)>=0?'':'none';});
  document.querySelectorAll('.detail').forEach(function(d){
    d.style.display=d.textContent.toLowerCase().indexOf(q)>=0?'':'none';});
});
document.querySelectorAll('table.sortable th:not(.nosort)').forEach(function(th,i){
  th.addEventListener('click',function(){
    var t=th.closest('table'),b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);
    var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
    var key=function(r){var c=r.cells[i];var v=c.dataset.sort!==undefined?c.dataset.sort:c.textContent;
      var n=parseFloat(v);return isNaN(n)?v:n;};
    rows.sort(function(x,y){var a=key(x),c=key(y);return (a<c?-1:a>c?1:0)*(asc?1:-1);});
    rows.forEach(function(r){b.appendChild(r);});
  });
});
// Load time, for the browser test's one-second budget (read back with --dump-dom).
document.documentElement.setAttribute('data-loaded-ms',String(Math.round(performance.now())));
)";

}  // namespace

namespace {
std::string render(const json& results) {
  std::ostringstream html;
  const json& cells = results.at("cells");
  const json& checks = results.at("checks");
  int cells_failed = 0, checks_failed = 0;
  for (const auto& c : cells) cells_failed += !cell_passed(c);
  for (const auto& c : checks) checks_failed += !c.at("passed").get<bool>();
  const bool all_ok = cells_failed == 0 && checks_failed == 0;

  // Columns: every implementation pair any kind has, in first-seen order.
  std::vector<std::string> pairs;
  std::vector<std::string> kinds;
  std::map<std::pair<std::string, std::string>, const json*> by_position;
  for (const auto& c : cells) {
    const std::string kind = str(c.at("kind")), pair = str(c.at("pair"));
    if (std::find(pairs.begin(), pairs.end(), pair) == pairs.end()) pairs.push_back(pair);
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
    by_position[{kind, pair}] = &c;
  }
  for (const auto& c : checks)
    if (std::find(kinds.begin(), kinds.end(), str(c.at("kind"))) == kinds.end()) kinds.push_back(str(c.at("kind")));

  std::string flags;
  for (const auto& f : results.at("cpu").at("flags")) flags += (flags.empty() ? "" : " ") + str(f);
  std::string engines;
  for (const auto& e : results.at("libtorch_engines")) engines += (engines.empty() ? "" : ", ") + str(e);
  // The int8 path each engine took (results files before it was recorded say nothing).
  std::string paths;
  const json int8_paths = results.at("cpu").value("int8_paths", json::object());
  for (const auto& [engine, path] : int8_paths.items()) paths += (paths.empty() ? "" : ", ") + engine + ": " + str(path);
  std::string isa = results.at("cpu").value("onednn_isa", std::string("not recorded"));
  if (results.at("cpu").contains("onednn_max_cpu_isa") && results.at("cpu").at("onednn_max_cpu_isa").is_string())
    isa += ", held by ONEDNN_MAX_CPU_ISA=" + str(results.at("cpu").at("onednn_max_cpu_isa"));
  std::string overrides;
  const json forced = results.value("integer_path_overrides", json::array());
  for (const auto& o : forced)
    overrides += (overrides.empty() ? "" : ", ") + str(o);

  html << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
       << "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
       << "<title>qconform report: " << (all_ok ? "all passing" : "failures") << "</title><style>" << kStyle
       << "</style></head><body><header><h1>qconform conformance report</h1><div class=\"verdict ";
  if (all_ok)
    html << "ok\">All passing: " << cells.size() << " of " << cells.size() << " agreement cells, " << checks.size()
         << " of " << checks.size() << " oracle checks";
  else
    html << "bad\">Failures: " << cells_failed << " of " << cells.size() << " agreement cells and " << checks_failed
         << " of " << checks.size() << " oracle checks fail";
  html << "</div><div class=\"facts\">"
       << "<div>LibTorch <b>" << escape(str(results.at("libtorch_version"))) << "</b></div>"
       << "<div>LibTorch engines <b>" << escape(engines) << "</b></div>"
       << "<div>CPU <b>" << escape(str(results.at("cpu").at("model"))) << "</b></div>"
       << "<div>CPU features <b>" << escape(flags.empty() ? "none detected" : flags) << "</b></div>"
       << "<div>oneDNN ISA <b>" << escape(isa) << "</b></div>"
       << "<div>int8 paths <b>" << escape(paths.empty() ? "not recorded" : paths) << "</b></div>"
       << (overrides.empty() ? ""
                             : "<div>integer models forced to <b>" + escape(overrides) + "</b> against LibTorch</div>")
       << "<div>profile <b>" << escape(str(results.at("profile"))) << "</b>, " << results.at("cases_per_cell")
       << " cases per cell</div>"
       << "<div>seed <b>" << results.at("seed") << "</b></div>"
       << "<div>run time <b>" << fixed(results.at("seconds").get<double>(), 2) << " s</b> ("
       << static_cast<long long>(results.at("cases_per_second").get<double>()) << " cases/s)</div>"
       << "<div>commit <b>" << escape(results.at("commit").get<std::string>().empty() ? "(not recorded)" : str(results.at("commit")))
       << "</b></div></div></header><main>";

  // The matrix.
  html << "<section><h2>Agreement matrix</h2><p class=\"small\">Rows: module kinds. Columns: implementation "
          "pairs. Each cell shows the worst case's error as a fraction of its derived bound (1 = at the bound) and the "
          "share of bit-identical output elements; click for details. Click a header to sort; type to filter.</p>"
       << "<input id=\"filter\" type=\"search\" placeholder=\"filter by module, engine, class...\" aria-label=\"filter\">"
       << "<div class=\"scroll\"><table class=\"filterable sortable matrix\"><thead><tr><th>module</th>";
  for (const auto& p : pairs) html << "<th>" << escape(p) << "</th>";
  html << "</tr></thead><tbody>";
  for (const auto& kind : kinds) {
    html << "<tr><td><b>" << escape(kind) << "</b></td>";
    for (const auto& p : pairs) {
      const auto it = by_position.find({kind, p});
      if (it == by_position.end()) {
        html << "<td class=\"cell na\" data-sort=\"-2\">n/a</td>";
        continue;
      }
      const json& c = *it->second;
      const double fraction = c.at("worst").at("bound_fraction").get<double>();
      html << "<td class=\"cell " << (cell_passed(c) ? "pass" : "fail") << "\" data-sort=\""
           << (fraction < 0 ? 1e9 : fraction) << "\"><a href=\"#" << anchor(c) << "\">"
           << (cell_passed(c) ? "" : "FAIL ") << worst_text(c) << "<br><span class=\"small\">"
           << c.at("passed") << "/" << c.at("cases") << " cases, " << fixed(100 * c.at("fraction_exact").get<double>(), 1)
           << "% exact</span></a></td>";
    }
    html << "</tr>";
  }
  html << "</tbody></table></div></section>";

  // Oracle checks.
  html << "<section><h2>State_dict, hook and rejection oracles</h2><table class=\"filterable\"><thead><tr>"
          "<th class=\"nosort\">module</th><th class=\"nosort\">check</th><th class=\"nosort\">runs</th>"
          "<th class=\"nosort\">verdict</th><th class=\"nosort\">findings</th></tr></thead><tbody>";
  for (const auto& c : checks) {
    const bool ok = c.at("passed");
    std::string findings;
    for (const auto& f : c.at("findings")) findings += "<pre>" + escape(str(f)) + "</pre>";
    html << "<tr><td>" << escape(str(c.at("kind"))) << "</td><td>" << escape(str(c.at("check"))) << "</td><td>" << c.at("runs")
         << "</td><td class=\"cell " << (ok ? "pass\">pass" : "fail\">FAIL") << "</td><td>"
         << (findings.empty() ? "none" : findings) << "</td></tr>";
  }
  html << "</tbody></table></section>";

  // Cell details.
  std::map<std::string, const json*> rows;
  for (const auto& row : results.at("tolerances")) rows[str(row.at("id"))] = &row;
  html << "<section><h2>Cells in detail</h2>";
  for (const auto& c : cells) {
    const bool ok = cell_passed(c);
    const json* row = rows.count(str(c.at("tolerance_row"))) ? rows[str(c.at("tolerance_row"))] : nullptr;
    html << "<div class=\"detail " << (ok ? "pass" : "fail") << "\" id=\"" << anchor(c) << "\"><h3>"
         << escape(str(c.at("kind"))) << ": " << escape(str(c.at("pair"))) << " &mdash; " << (ok ? "pass" : "FAIL")
         << "</h3><div class=\"cols\"><div><p><b>Tolerance row</b> <code>" << escape(str(c.at("tolerance_row"))) << "</code>";
    if (row) html << " (" << escape(str((*row).at("kind"))) << ")<br><span class=\"small\">" << escape(str((*row).at("reason"))) << "</span>";
    html << "</p><p>" << c.at("passed") << " of " << c.at("cases") << " cases passed";
    if (c.at("rejected").get<int>() > 0) html << " (" << c.at("rejected") << " refused by both sides)";
    if (c.value("libtorch_unstable", 0) > 0)
      html << "; in " << c.at("libtorch_unstable") << " LibTorch gave different bits when run again, and the case was judged on the rerun";
    if (c.value("libtorch_history_dependent", 0) > 0)
      html << "; in " << c.at("libtorch_history_dependent")
           << " LibTorch's answer depended on its earlier calls (another answer with a fresh prepack per GEMM call, "
              "on which the case was judged)";
    if (c.value("libtorch_defect_cases", 0) > 0)
      html << "; in " << c.at("libtorch_defect_cases") << " LibTorch's answer was not compared, a known defect: "
           << escape(c.value("libtorch_defect", std::string()));
    if (c.value("engine_deviation_cases", 0) > 0)
      html << "; in " << c.at("engine_deviation_cases") << " the engine computes another definition than PyTorch's "
           << "module, not compared with the reference: " << escape(c.value("engine_deviation", std::string()));
    html << "; " << fixed(100 * c.at("fraction_exact").get<double>(), 2) << "% of " << c.at("elements")
         << " output elements bit-identical.<br>Worst case: " << worst_text(c) << ", |error| "
         << general(c.at("worst").at("abs_error").get<double>()) << ", bound " << general(c.at("worst").at("bound").get<double>())
         << ", activation scale " << general(c.at("worst").at("activation_scale").get<double>()) << "<br><code>"
         << escape(str(c.at("worst").at("case"))) << "</code></p><p><b>Rerun the worst case</b><pre>"
         << escape(str(c.at("worst").at("rerun"))) << "</pre></p></div><div><b>Mismatch classes</b><table><tbody>";
    if (c.at("mismatch_classes").empty()) html << "<tr><td>none: every element bit-identical</td></tr>";
    for (const auto& [name, count] : c.at("mismatch_classes").items())
      html << "<tr><td>" << escape(name) << "</td><td>" << count << "</td></tr>";
    html << "</tbody></table>";
    if (c.contains("first_differing_steps") && !c.at("first_differing_steps").empty()) {
      // Where along the sequence the differing cases start (recurrent kinds).
      html << "<p><b>Cases by the time step where outputs first differ</b><table><tbody>";
      std::vector<std::pair<int64_t, int64_t>> steps;
      for (const auto& [step, count] : c.at("first_differing_steps").items())
        steps.emplace_back(std::stoll(step), count.get<int64_t>());
      std::sort(steps.begin(), steps.end());
      for (const auto& [step, count] : steps) html << "<tr><td>step " << step << "</td><td>" << count << "</td></tr>";
      html << "</tbody></table></p>";
    }
    html << "<p><b>Worst error per case, as a fraction of its bound</b><br>"
         << histogram_svg(c.at("bound_fractions")) << "</p></div></div>";
    for (const auto& f : c.at("failures"))
      html << "<p class=\"mismatch\">Counterexample <code>" << escape(str(f.at("case"))) << "</code></p><pre>"
           << escape(str(f.at("message"))) << "</pre><p>Rerun:</p><pre>" << escape(str(f.at("rerun"))) << "</pre>";
    html << "</div>";
  }
  html << "</section>";

  // Engines and rejection parity.
  html << "<section><h2>Engine table</h2><table class=\"sortable\"><thead><tr><th>engine</th><th>op</th>"
          "<th>checked live</th><th>per-channel</th><th>weight zp = 0 only</th><th>fp16</th><th>reduce_range</th>"
          "<th>int16 saturation</th><th>activations</th><th class=\"nosort\">notes</th></tr></thead><tbody>";
  for (const auto& e : results.at("engine_table"))
    html << "<tr><td>" << escape(str(e.at("engine"))) << "</td><td><code>" << escape(str(e.at("op"))) << "</code></td><td>"
         << (e.at("verified_live").get<bool>() ? "yes" : "no (from source)") << "</td><td>"
         << (e.at("per_channel_weights").get<bool>() ? "yes" : "no") << "</td><td>"
         << (e.at("weight_zero_point_must_be_zero").get<bool>() ? "yes" : "no") << "</td><td>"
         << (e.at("fp16_weights").get<bool>() ? "yes" : "no") << "</td><td>"
         << (e.at("honors_reduce_range").get<bool>() ? "honored" : "ignored") << "</td><td>"
         << (e.at("pairwise_int16_saturation").get<bool>() ? "possible" : "no") << "</td><td>"
         << escape(str(e.at("activation_quantization"))) << "</td><td class=\"small\">" << escape(str(e.at("notes"))) << "</td></tr>";
  html << "</tbody></table>";
  html << "<h2>Rejection parity</h2><p class=\"small\">For each weight configuration and engine: the engine table's "
          "verdict, the integer implementation's, and LibTorch's live answer (where this LibTorch has the engine). "
          "A red cell disagrees with the table.</p><table class=\"filterable sortable\"><thead><tr><th>module</th>"
          "<th>weights</th><th>engine</th><th>engine table</th><th>integer</th><th>LibTorch</th></tr></thead><tbody>";
  for (const auto& r : results.at("rejections")) {
    auto verdict = [&](const char* key) {
      const std::string v = str(r.at(key));
      if (v.empty()) return std::string("<td class=\"na\">not available</td>");
      const bool agrees = v == str(r.at("table"));
      return std::string("<td class=\"") + (agrees ? "" : "fail") + "\">" + escape(v) + "</td>";
    };
    html << "<tr><td>" << escape(str(r.at("kind"))) << "</td><td>" << escape(str(r.at("variant"))) << "</td><td>"
         << escape(str(r.at("engine"))) << "</td><td>" << escape(str(r.at("table"))) << "</td>" << verdict("quantized")
         << verdict("libtorch") << "</tr>";
  }
  html << "</tbody></table></section>";

  // Fixtures.
  html << "<section><h2>Fixture replays</h2>";
  if (!results.contains("fixtures") || results.at("fixtures").empty()) {
    html << "<p class=\"small\">No LibTorch fixtures were replayed in this run.</p>";
  } else {
    html << "<table class=\"filterable sortable\"><thead><tr><th>fixture</th><th>torch</th><th>recorded on</th>"
            "<th>verdict</th><th>worst error</th></tr></thead><tbody>";
    for (const auto& f : results.at("fixtures"))
      html << "<tr><td>" << escape(str(f.at("name"))) << "</td><td>" << escape(str(f.at("torch_version"))) << "</td><td>"
           << escape(str(f.at("engine"))) << "</td><td class=\"" << (f.at("passed").get<bool>() ? "pass\">pass" : "fail\">FAIL")
           << "</td><td>" << escape(str(f.at("worst"))) << "</td></tr>";
    html << "</tbody></table>";
  }
  html << "</section><section><h2>Tolerance table</h2><table><thead><tr><th class=\"nosort\">row</th>"
          "<th class=\"nosort\">pair</th><th class=\"nosort\">bound</th><th class=\"nosort\">reason</th></tr></thead><tbody>";
  for (const auto& row : results.at("tolerances"))
    html << "<tr><td><code>" << escape(str(row.at("id"))) << "</code></td><td>" << escape(str(row.at("a"))) << " vs "
         << escape(str(row.at("b"))) << (row.at("same_engine").get<bool>() ? " (same engine)" : "") << "</td><td>"
         << escape(str(row.at("kind"))) << "</td><td class=\"small\">" << escape(str(row.at("reason"))) << "</td></tr>";
  html << "</tbody></table></section></main><script>" << kScript << "</script></body></html>\n";
  return html.str();
}
}  // namespace

// Every field is read with at() and get<>(): a results file missing one, or holding another
// type, is refused naming what (not read past: found by fuzzing `qconform report`).
std::string render_report(const json& results) {
  try {
    return render(results);
  } catch (const json::exception& e) {
    throw Error(std::string("a malformed results file: ") + e.what());
  }
}

json parse_results(const std::string& text, const std::string& origin) {
  json results;
  try {
    results = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(origin + ": not valid JSON: " + e.what());
  }
  if (!results.is_object() || !results.contains("format") || !results.at("format").is_string() ||
      results.at("format").get<std::string>() != "qconform-results/1")
    throw Error(origin + ": not a qconform results file (format is '" +
                (results.is_object() && results.contains("format") ? results.at("format").dump() : std::string("absent")) +
                "')");
  return results;
}

json read_results(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open results file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_results(text.str(), path);
}

void write_report(const json& results, const std::string& path) {
  write_file_atomically(path, render_report(results), "report");
}

}  // namespace qconform
