# gen-docs.awk - generate libnetcore's man pages and docs/api.md from the
# comments of include/netcore.h (the convention is described in the
# header's second comment).
#
# Portable awk (POSIX; runs with mawk, busybox awk and gawk): no
# gawk-only functions, no regex intervals, no arrays of arrays.
#
# usage (the Makefile runs it: `make man`, `make api-md`):
#   awk -f docs/gen-docs.awk -v mode=gen -v mandir=DIR -v md=FILE \
#       -v version=0.1.0 [-v date=YYYY-MM-DD] [-v root=.] include/netcore.h
#       writes DIR/nc_*.3, DIR/netcore.3, DIR/libnetcore.3 and FILE
#   awk -f docs/gen-docs.awk -v mode=list include/netcore.h
#       prints the names of the pages it writes, one a line
#   awk -f docs/gen-docs.awk -v mode=check [-v root=.] include/netcore.h
#       prints nothing, exits 1 if any declaration breaks the convention
#       (every problem is also reported, as a warning, in mode=gen)
#
# root is the directory that the "Example: docs/examples/NAME.c" paths of
# the header are relative to (default: the current directory).

BEGIN {
    if (mode == "") mode = "gen"
    if (root == "") root = "."
    nsec = 0          # sections (banner comments); section 0 is the top
    sec_title[0] = ""
    ndoc = 0          # documented groups of declarations
    nfn = 0           # functions
    nprob = 0         # convention problems found
    state = "code"    # code | comment | decl
    pending = 0       # a finished comment waiting for its declaration
    nfree = 0         # free-standing comments seen
    preface = ""
}

# --- reading the header ------------------------------------------------

function problem(line, what) {
    nprob++
    printf "%s:%d: %s\n", FILENAME, line, what > "/dev/stderr"
}

function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}

# The text of one comment line, without the comment markers: "/* x",
# " * x", " x */" all give "x", keeping the indentation after "* ".
function comment_text(s) {
    sub(/[ \t]*\*\/[ \t]*$/, "", s)
    if (s ~ /^\/\*/) s = substr(s, 3)
    else if (s ~ /^[ \t]*\*/) sub(/^[ \t]*\*/, "", s)
    if (substr(s, 1, 1) == " ") s = substr(s, 2)
    sub(/[ \t]+$/, "", s)
    return s
}

# A comment is complete: decide what it is once the next line is known.
function end_comment() {
    pending = 1
    pending_text = ctext
    pending_line = cline
    pending_banner = cbanner
}

# A comment followed by a blank line (or a non-declaration) stands alone:
# the preface, a section banner, or a note that is not rendered.
function free_comment(   n, i, lines, body, title) {
    pending = 0
    nfree++
    if (pending_banner) {
        n = split(pending_text, lines, "\n")
        body = ""
        title = ""
        for (i = 1; i <= n; i++) {
            if (lines[i] ~ /^-+$/) continue
            if (title == "" && lines[i] != "") { title = lines[i]; continue }
            body = body lines[i] "\n"
        }
        nsec++
        sec_src[nsec] = ""
        if (match(title, / \([^)]*\)/)) {
            sec_src[nsec] = substr(title, RSTART + 2, RLENGTH - 3)
            title = substr(title, 1, RSTART - 1) substr(title, RSTART + RLENGTH)
        }
        sec_title[nsec] = title
        sec_line[nsec] = pending_line
        sec_example[nsec] = ""
        # "Example: PATH" names the section's program; it is not intro text.
        n = split(body, lines, "\n")
        body = ""
        for (i = 1; i <= n; i++) {
            if (lines[i] ~ /^Example: /) {
                sec_example[nsec] = trim(substr(lines[i], 10))
                continue
            }
            body = body lines[i] "\n"
        }
        sec_intro[nsec] = strip_blank(body)
        return
    }
    if (nfree == 1 && nsec == 0)
        preface = pending_text
}

# Remove leading and trailing blank lines of a block of text.
function strip_blank(s) {
    sub(/^\n+/, "", s)
    sub(/\n+$/, "", s)
    return s
}

# Split a documentation comment into summary, description and labelled
# parts, for group d.
function parse_doc(d, text, line,   n, i, lines, l, part, para, lab) {
    n = split(text, lines, "\n")
    doc_summary[d] = ""
    doc_desc[d] = ""
    doc_returns[d] = ""
    doc_errors[d] = ""
    doc_thread[d] = ""
    doc_seealso[d] = ""
    doc_line[d] = line
    part = "summary"
    for (i = 1; i <= n; i++) {
        l = lines[i]
        lab = ""
        if (l ~ /^Returns:/) { lab = "returns"; l = substr(l, 9) }
        else if (l ~ /^Errors:/) { lab = "errors"; l = substr(l, 8) }
        else if (l ~ /^Thread:/) { lab = "thread"; l = substr(l, 8) }
        else if (l ~ /^See also:/) { lab = "seealso"; l = substr(l, 10) }
        if (lab != "") {
            if (lab == "errors" && doc_errors[d] != "")
                problem(line, "two Errors: parts in one comment")
            part = lab
            if (lab != "errors") l = trim(l)
            else if (trim(l) == "") continue
            else l = trim(l)
        } else if (part == "summary") {
            if (l == "") { part = "desc"; continue }
            doc_summary[d] = doc_summary[d] (doc_summary[d] == "" ? "" : " ") trim(l)
            continue
        }
        if (part == "desc") doc_desc[d] = doc_desc[d] l "\n"
        else if (part == "returns") doc_returns[d] = doc_returns[d] l "\n"
        else if (part == "errors") doc_errors[d] = doc_errors[d] l "\n"
        else if (part == "thread") doc_thread[d] = doc_thread[d] l "\n"
        else if (part == "seealso") doc_seealso[d] = doc_seealso[d] " " l
    }
    doc_desc[d] = strip_blank(doc_desc[d])
    doc_returns[d] = strip_blank(doc_returns[d])
    doc_errors[d] = strip_blank(doc_errors[d])
    doc_thread[d] = strip_blank(doc_thread[d])
    gsub(/,/, " ", doc_seealso[d])
    doc_seealso[d] = trim(doc_seealso[d])
    gsub(/  +/, " ", doc_seealso[d])
}

# One complete declaration (its text, with "\n" between lines) belongs to
# group d. Records its names: a function, a type, a macro or enum
# constants.
function add_decl(d, text, line,   code, name, ret, n, i, parts, p) {
    doc_decl[d] = doc_decl[d] (doc_decl[d] == "" ? "" : "\n") text
    code = text
    # Field comments are not code.
    while (match(code, /\/\*[^*]*\*+([^\/*][^*]*\*+)*\//))
        code = substr(code, 1, RSTART - 1) " " substr(code, RSTART + RLENGTH)
    gsub(/\n/, " ", code)
    gsub(/[ \t]+/, " ", code)
    code = trim(code)
    if (code ~ /^#define /) {
        split(code, parts, " ")
        add_name(d, parts[2], "macro", line)
    } else if (code ~ /^typedef /) {
        if (code ~ /\}/) {
            name = code
            sub(/^.*\}/, "", name)
            gsub(/[ ;]/, "", name)
        } else if (match(code, /\( *\* *[A-Za-z_][A-Za-z0-9_]* *\)/)) {
            name = substr(code, RSTART, RLENGTH)
            gsub(/[()* ]/, "", name)
        } else {
            name = code
            sub(/ *; *$/, "", name)
            sub(/.*[^A-Za-z0-9_]/, "", name)
        }
        add_name(d, name, "type", line)
    } else if (code ~ /^enum *\{/) {
        # Anonymous enum: its constants are the names.
        p = code
        sub(/^enum *\{/, "", p)
        sub(/\}.*$/, "", p)
        n = split(p, parts, ",")
        for (i = 1; i <= n; i++) {
            name = trim(parts[i])
            sub(/[ =].*$/, "", name)
            if (name != "") add_name(d, name, "const", line)
        }
    } else if (match(code, /[A-Za-z_][A-Za-z0-9_]* *\(/)) {
        name = substr(code, RSTART, RLENGTH)
        sub(/ *\($/, "", name)
        ret = trim(substr(code, 1, RSTART - 1))
        add_name(d, name, "func", line)
        nfn++
        fn_name[nfn] = name
        fn_doc[nfn] = d
        fn_ret[nfn] = ret
        fn_proto[nfn] = text
        fn_line[nfn] = line
        fn_of[name] = nfn
    } else {
        problem(line, "cannot tell what this declares: " code)
    }
}

function add_name(d, name, kind, line) {
    doc_names[d] = doc_names[d] (doc_names[d] == "" ? "" : " ") name
    if (doc_kind[d] == "" || kind == "func") doc_kind[d] = kind
    name_kind[name] = kind
    name_doc[name] = d
    if (d == 0) problem(line, name ": declared without a comment right before it")
}

# Undocumented declarations still get a group (number 0 is never used),
# so that they are reported and listed.
function new_group(documented,   d) {
    ndoc++
    d = ndoc
    doc_sec[d] = nsec
    doc_names[d] = ""
    doc_decl[d] = ""
    doc_kind[d] = ""
    doc_undoc[d] = !documented
    return d
}

{
    sub(/\r$/, "")
    line = $0
}

state == "comment" {
    ctext = ctext "\n" comment_text(line)
    if (line ~ /\*\//) {
        state = "code"
        end_comment()
    }
    next
}

state == "decl" {
    decl_text = decl_text "\n" line
    decl_scan(line)
    if (decl_done) {
        add_decl(cur_group, decl_text, decl_line)
        state = "code"
    }
    next
}

# Track braces and the end of one declaration (";" at depth 0, or the
# end of a #define line), ignoring comments inside it.
function decl_scan(s,   c, i, n) {
    if (decl_is_macro) {
        decl_done = (s !~ /\\$/)
        return
    }
    n = length(s)
    for (i = 1; i <= n; i++) {
        c = substr(s, i, 1)
        if (decl_in_comment) {
            if (c == "*" && substr(s, i + 1, 1) == "/") { decl_in_comment = 0; i++ }
            continue
        }
        if (c == "/" && substr(s, i + 1, 1) == "*") { decl_in_comment = 1; i++; continue }
        if (c == "{") decl_depth++
        else if (c == "}") decl_depth--
        else if (c == ";" && decl_depth == 0) decl_done = 1
    }
}

# A line of code (state "code").
{
    if (line ~ /^\/\*/) {
        if (pending) free_comment()
        cur_group = -1
        ctext = comment_text(line)
        cline = NR
        cbanner = (line ~ /^\/\* *---/)
        if (line ~ /\*\// && line !~ /^\/\*.*\*\/.*\/\*/) {
            end_comment()
        } else {
            state = "comment"
        }
        next
    }
    if (line ~ /^[ \t]*$/) {
        if (pending) free_comment()
        cur_group = -1
        next
    }
    # Lines that declare nothing: include guards, includes, pragmas,
    # extern "C" and its braces.
    if ((line ~ /^#/ && line !~ /^#define NC_/) || line ~ /^extern "C"/ || line ~ /^}[ \t]*$/) {
        if (pending) free_comment()
        cur_group = -1
        next
    }
    if (pending) {
        cur_group = new_group(1)
        parse_doc(cur_group, pending_text, pending_line)
        pending = 0
    } else if (cur_group < 0) {
        cur_group = new_group(0)
    }
    decl_text = line
    decl_line = NR
    decl_depth = 0
    decl_in_comment = 0
    decl_done = 0
    decl_is_macro = (line ~ /^#define /)
    decl_scan(line)
    if (decl_done) add_decl(cur_group, decl_text, decl_line)
    else state = "decl"
}

# --- checking the convention -------------------------------------------

function check_all(   d, i, name, n, lines, k, ret, s, refs, nref, r, first) {
    for (d = 1; d <= ndoc; d++) {
        if (doc_undoc[d]) {
            problem(doc_line_of(d), doc_names[d] ": no documentation comment right before the declaration")
            continue
        }
        if (doc_summary[d] == "")
            problem(doc_line[d], doc_names[d] ": the comment has no summary")
        if (doc_kind[d] != "func") continue
        if (doc_thread[d] == "")
            problem(doc_line[d], doc_names[d] ": no \"Thread:\" line")
        else if (doc_thread[d] !~ /^(any thread|the loop's thread)/)
            problem(doc_line[d], doc_names[d] ": \"Thread:\" must start with \"any thread\" or \"the loop's thread\"")
        nref = split(doc_seealso[d], refs, " ")
        for (r = 1; r <= nref; r++)
            if (!(refs[r] in name_kind))
                problem(doc_line[d], doc_names[d] ": \"See also: " refs[r] "\" is not declared in the header")
        if (doc_errors[d] != "") {
            n = split(doc_errors[d], lines, "\n")
            first = lines[1]
            if (n == 1 && first ~ /^[Nn]one/) continue
            if (first !~ /^ *-E[A-Z0-9]+ /)
                problem(doc_line[d], doc_names[d] ": the first Errors: line must be \"-ENAME  meaning\" (or \"Errors: none.\")")
        }
    }
    for (i = 1; i <= nfn; i++) {
        name = fn_name[i]
        d = fn_doc[i]
        if (doc_undoc[d]) continue
        ret = fn_ret[i]
        if (ret != "void" && doc_returns[d] == "")
            problem(doc_line[d], name ": returns " ret " but its comment has no \"Returns:\" part")
        if (ret == "int" && doc_errors[d] == "")
            problem(doc_line[d], name ": returns int but its comment has no \"Errors:\" part")
        if (doc_sec[d] == 0)
            problem(fn_line[i], name ": declared before the first section banner")
    }
    for (s = 1; s <= nsec; s++) {
        if (sec_example[s] == "")
            problem(sec_line[s], "section \"" sec_title[s] "\" has no \"Example: docs/examples/NAME.c\" line")
        else if (!file_exists(root "/" sec_example[s]))
            problem(sec_line[s], "section \"" sec_title[s] "\": example " sec_example[s] " does not exist")
    }
    if (preface == "")
        problem(1, "the header does not start with its preface comment")
}

function doc_line_of(d,   n, parts) {
    split(doc_names[d], parts, " ")
    if (parts[1] in fn_of) return fn_line[fn_of[parts[1]]]
    return 1
}

function file_exists(path,   l, r) {
    r = (getline l < path)
    if (r >= 0) close(path)
    return r >= 0
}

# --- text: shared by man and markdown ----------------------------------

function indent_of(s,   n) {
    n = match(s, /[^ ]/)
    return n ? n - 1 : 0
}

# Render a block of comment text (paragraphs, "- " lists, indented
# verbatim lines, one-line headings when allow_head) as man or markdown.
function render(text, fmt, allow_head,   n, lines, i, l, ind, out, para, verb, vmin, j, k, next_l, deep) {
    n = split(text, lines, "\n")
    out = ""
    in_item = 0
    para = ""
    i = 1
    while (i <= n) {
        l = lines[i]
        if (l == "") { out = out flush_para(para, fmt); para = ""; i++; continue }
        ind = indent_of(l)
        # A list item.
        if (ind == 0 && l ~ /^- /) {
            out = out flush_para(para, fmt)
            in_item = 1
            item_paras = 0
            out = out (fmt == "man" ? ".IP \\(bu 2\n" : "")
            para = substr(l, 3)
            i++
            continue
        }
        # The text of a list item goes on two spaces in.
        if (in_item && ind == 2) {
            para = para (para == "" ? "" : "\n") substr(l, 3)
            i++
            continue
        }
        # Verbatim: indented deeper than the text around it.
        deep = in_item ? 4 : 2
        if (ind >= deep) {
            out = out flush_para(para, fmt)
            para = ""
            vmin = 1000
            for (j = i; j <= n && lines[j] != "" && indent_of(lines[j]) >= deep; j++)
                if (indent_of(lines[j]) < vmin) vmin = indent_of(lines[j])
            verb = ""
            for (k = i; k < j; k++) verb = verb substr(lines[k], vmin + 1) "\n"
            out = out verbatim(verb, fmt)
            i = j
            continue
        }
        # Text at the margin ends a list.
        if (in_item) {
            out = out flush_para(para, fmt)
            para = ""
            in_item = 0
            out = out (fmt == "md" ? "\n" : "")
        }
        # A one-line paragraph without final punctuation is a heading.
        next_l = (i < n) ? lines[i + 1] : ""
        if (allow_head && para == "" && next_l == "" && l !~ /[.:;,)?!]$/) {
            out = out (fmt == "man" ? ".SS " man_quote(l) "\n" : "### " l "\n\n")
            i++
            continue
        }
        para = para (para == "" ? "" : "\n") trim(l)
        i++
    }
    out = out flush_para(para, fmt)
    if (in_item && fmt == "md") out = out "\n"
    in_item = 0
    return out
}

# One paragraph, in or out of a list item (globals in_item, item_paras).
function flush_para(p, fmt,   n, lines, i, out) {
    if (p == "") return ""
    n = split(p, lines, "\n")
    out = ""
    if (fmt == "man") {
        if (!in_item) out = ".PP\n"
        else if (item_paras > 0) out = ".IP \"\" 2\n"
        for (i = 1; i <= n; i++) out = out man_text(lines[i]) "\n"
    } else if (in_item) {
        if (item_paras > 0) out = "\n"
        for (i = 1; i <= n; i++)
            out = out ((i == 1 && item_paras == 0) ? "- " : "  ") md_text(lines[i]) "\n"
    } else {
        for (i = 1; i <= n; i++) out = out md_text(lines[i]) "\n"
        out = out "\n"
    }
    if (in_item) item_paras++
    return out
}

function verbatim(v, fmt,   n, lines, i, out, pre) {
    sub(/\n$/, "", v)
    n = split(v, lines, "\n")
    if (fmt == "man") {
        out = in_item ? ".IP \"\" 2\n" : ".PP\n"
        out = out ".in +4n\n.EX\n"
        for (i = 1; i <= n; i++) out = out man_verb(lines[i]) "\n"
        out = out ".EE\n.in\n"
    } else {
        pre = in_item ? "  " : ""
        out = (in_item ? "\n" : "") pre "```\n"
        for (i = 1; i <= n; i++) out = out (lines[i] == "" ? "" : pre) lines[i] "\n"
        out = out pre "```\n" (in_item ? "" : "\n")
    }
    if (in_item) item_paras++
    return out
}

# --- man -----------------------------------------------------------------

# Escape a verbatim line for groff.
function man_verb(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    if (s ~ /^[.']/) s = "\\&" s
    return s
}

# A line of running text: code-like words in bold.
function man_text(s,   n, words, i, w, out, pre, core, post) {
    n = split(s, words, " ")
    out = ""
    for (i = 1; i <= n; i++) {
        w = words[i]
        split_word(w)
        core = W_core
        if (is_code(core)) w = man_esc(W_pre) "\\fB" man_esc(core) "\\fR" man_esc(W_post)
        else w = man_esc(w)
        out = out (i > 1 ? " " : "") w
    }
    if (out ~ /^[.']/) out = "\\&" out
    return out
}

function man_esc(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    return s
}

function man_quote(s) {
    s = man_esc(s)
    gsub(/"/, "\\(dq", s)
    return "\"" s "\""
}

# Split a word into the punctuation before it, its core and the
# punctuation after it (W_pre, W_core, W_post).
function split_word(w) {
    W_pre = ""
    W_post = ""
    while (w != "" && index("(\"'", substr(w, 1, 1))) {
        W_pre = W_pre substr(w, 1, 1)
        w = substr(w, 2)
    }
    while (w != "" && index(".,;:)\"'", substr(w, length(w), 1)) && w !~ /\(\)$/) {
        W_post = substr(w, length(w), 1) W_post
        w = substr(w, 1, length(w) - 1)
    }
    if (w ~ /[A-Za-z0-9]'s$/) {
        W_post = "'s" W_post
        w = substr(w, 1, length(w) - 2)
    }
    W_core = w
}

function is_code(w) {
    return w ~ /^-E[A-Z0-9]+$/ || w ~ /^[A-Za-z_][A-Za-z0-9_]*\(\)$/ ||
           w ~ /^[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_.]*[A-Za-z0-9](\(\))?$/
}

function man_head(name, title) {
    return ".TH " toupper(name) " 3 " (date == "" ? "\"\"" : date) " \"libnetcore " version "\" \"Library Functions Manual\"\n.nh\n.\\\" Keep identifiers whole: .EX and .EE restore hyphenation from HY.\n.nr HY 0\n.ad l\n"
}

function lc_first(s) {
    if (s ~ /^[A-Z][a-z]/) s = tolower(substr(s, 1, 1)) substr(s, 2)
    sub(/\.$/, "", s)
    return s
}

# The text of the example of section s (empty if there is none).
function example_text(s,   path, l, out) {
    if (sec_example[s] == "") return ""
    path = root "/" sec_example[s]
    out = ""
    while ((getline l < path) > 0) out = out l "\n"
    close(path)
    return out
}

function man_example(s,   text, n, lines, i, out) {
    text = example_text(s)
    if (text == "") return ""
    sub(/\n$/, "", text)
    n = split(text, lines, "\n")
    out = ".SH EXAMPLE\n"
    out = out "The program below shows the functions of this section at work\n"
    out = out "(any network it uses is loopback).\n"
    out = out "It is\n.I " man_esc(sec_example[s]) "\nin the source tree, which\n.B make check\ncompiles and runs.\n"
    out = out ".PP\n.in +4n\n.EX\n"
    for (i = 1; i <= n; i++) out = out man_verb(lines[i]) "\n"
    return out ".EE\n.in\n"
}

# The ERRORS list of group d.
function man_errors(d,   n, lines, i, l, out, ind0, ind, cur) {
    n = split(doc_errors[d], lines, "\n")
    out = ""
    if (n == 1 && lines[1] !~ /^ *-E/) return ".PP\n" man_text(trim(lines[1])) "\n"
    ind0 = indent_of(lines[1])
    for (i = 1; i <= n; i++) {
        l = lines[i]
        ind = indent_of(l)
        l = trim(l)
        if (l == "") continue
        if (ind <= ind0) {
            if (l ~ /^-E[A-Z0-9]+/) {
                match(l, /^-E[A-Z0-9]+/)
                out = out ".TP\n.B " man_esc(substr(l, 1, RLENGTH)) "\n"
                l = trim(substr(l, RLENGTH + 1))
                if (l != "") out = out man_text(l) "\n"
            } else {
                out = out ".PP\n" man_text(toupper(substr(l, 1, 1)) substr(l, 2)) "\n"
            }
        } else {
            out = out man_text(l) "\n"
        }
    }
    return out
}

function see_also_man(d, self,   n, refs, i, r, seen, list, out, k) {
    list = ""
    n = split(doc_names[d], refs, " ")
    for (i = 1; i <= n; i++)
        if (refs[i] != self && name_kind[refs[i]] == "func" && !((refs[i]) in seen)) {
            seen[refs[i]] = 1
            list = list " " refs[i]
        }
    n = split(doc_seealso[d], refs, " ")
    for (i = 1; i <= n; i++)
        if (refs[i] != self && name_kind[refs[i]] == "func" && !((refs[i]) in seen)) {
            seen[refs[i]] = 1
            list = list " " refs[i]
        }
    list = trim(list " netcore")
    n = split(list, refs, " ")
    out = ".SH SEE ALSO\n"
    for (i = 1; i <= n; i++)
        out = out ".BR " man_esc(refs[i]) " (3)" (i < n ? "," : "") "\n"
    return out
}

function write_fn_page(i,   name, d, f, n, names, k, out, path) {
    name = fn_name[i]
    d = fn_doc[i]
    out = man_head(name)
    out = out ".SH NAME\n" man_esc(name) " \\- " man_esc(lc_first(doc_summary[d])) "\n"
    out = out ".SH SYNOPSIS\n.nf\n.B #include <netcore.h>\n.PP\n"
    n = split(doc_names[d], names, " ")
    for (k = 1; k <= n; k++)
        if (names[k] in fn_of)
            out = out man_proto(fn_proto[fn_of[names[k]]])
    out = out ".fi\n.PP\nCompile and link with:\n.PP\n.in +4n\n.EX\n"
    out = out "cc ... $(pkg\\-config \\-\\-cflags \\-\\-libs libnetcore)\n.EE\n.in\n"
    out = out ".SH DESCRIPTION\n"
    out = out render(doc_summary[d] (doc_desc[d] == "" ? "" : "\n\n" doc_desc[d]), "man", 0)
    out = out ".SH RETURN VALUE\n"
    if (doc_returns[d] != "") out = out render(doc_returns[d], "man", 0)
    else out = out ".PP\nNone.\n"
    if (doc_errors[d] != "") out = out ".SH ERRORS\n" man_errors(d)
    if (doc_thread[d] != "") out = out ".SH THREAD SAFETY\n" render(toupper(substr(doc_thread[d], 1, 1)) substr(doc_thread[d], 2), "man", 0)
    out = out man_example(doc_sec[d])
    out = out see_also_man(d, name)
    path = mandir "/" name ".3"
    printf "%s", out > path
    close(path)
}

function man_proto(p,   n, lines, i, out) {
    n = split(p, lines, "\n")
    out = ""
    for (i = 1; i <= n; i++) out = out man_verb(lines[i]) "\n"
    return out
}

# netcore(3): the library, every function by section, the types.
function write_overview(   out, s, d, i, n, names, k, path, pre, first, last, ex) {
    out = man_head("netcore")
    out = out ".SH NAME\nnetcore, libnetcore \\- " man_esc(preface_summary()) "\n"
    out = out ".SH SYNOPSIS\n.nf\n.B #include <netcore.h>\n.PP\n"
    out = out "cc ... $(pkg\\-config \\-\\-cflags \\-\\-libs libnetcore)\n.fi\n"
    out = out ".SH DESCRIPTION\n" render(preface_body(), "man", 1)
    out = out ".SH \"FUNCTIONS AND TYPES\"\n"
    out = out ".PP\nBy section of the header; every function has its own page.\n"
    for (s = 1; s <= nsec; s++) {
        out = out ".SS " man_quote(sec_title[s]) "\n"
        if (sec_intro[s] != "") out = out render(sec_intro[s], "man", 0)
        first = 1
        for (d = 1; d <= ndoc; d++) {
            if (doc_sec[d] != s || doc_kind[d] != "func") continue
            if (first) { out = out ".PP\nFunctions:\n"; first = 0 }
            n = split(doc_names[d], names, " ")
            for (k = 1; k <= n; k++) {
                if (!(names[k] in fn_of)) continue
                out = out ".TP\n.BR " man_esc(names[k]) " (3)\n" man_text(doc_summary[d]) "\n"
            }
        }
        first = 1
        for (d = 1; d <= ndoc; d++) {
            if (doc_sec[d] != s || doc_kind[d] == "func") continue
            if (first) { out = out ".PP\nTypes and constants:\n"; first = 0 }
            out = out ".PP\n.in +4n\n.EX\n" man_proto(doc_decl[d]) ".EE\n.in\n"
            out = out ".RS 4\n" render(doc_summary[d] (doc_desc[d] == "" ? "" : "\n\n" doc_desc[d]), "man", 0) ".RE\n"
        }
    }
    ex = overview_example_sec()
    if (ex) out = out man_example(ex)
    out = out ".SH FILES\n.TP\n.I netcore.h\nthe public header: every declaration with its documentation.\n"
    out = out ".TP\n.I libnetcore.pc\nthe pkg\\-config file.\n"
    out = out ".SH SEE ALSO\n"
    out = out ".BR epoll (7),\n.BR signalfd (2),\n.BR getifaddrs (3),\n.BR inet_pton (3),\n"
    out = out ".BR tcp (7),\n.BR socket (7),\n.BR unix (7)\n"
    out = out ".PP\nIn the source tree:\n.I docs/api.md\n(the same reference as one page),\n"
    out = out ".I docs/pitfalls.md\n(the epoll pitfalls the library removes),\n.IR docs/design.md ,\n"
    out = out "and the programs in\n.IR docs/examples/ \" and \" examples/ .\n"
    path = mandir "/netcore.3"
    printf "%s", out > path
    close(path)
    path = mandir "/libnetcore.3"
    printf ".so man3/netcore.3\n" > path
    close(path)
}

# The section whose example the overview shows: the listeners' (a
# complete server and client), else the last one with an example.
function overview_example_sec(   s, best) {
    best = 0
    for (s = 1; s <= nsec; s++) {
        if (sec_example[s] == "") continue
        best = s
        if (sec_example[s] ~ /listeners\.c$/) return s
    }
    return best
}

# The preface's first line is "netcore.h - SUMMARY."; the rest is its body.
function preface_summary(   l) {
    l = preface
    sub(/^\n+/, "", l)
    sub(/\n.*/, "", l)
    sub(/^[^ ]+ - /, "", l)
    sub(/^libnetcore, /, "", l)
    sub(/^an? /, "", l)
    sub(/\.$/, "", l)
    return l
}

function preface_body(   l) {
    l = preface
    sub(/^\n+/, "", l)
    sub(/^[^\n]*\n/, "", l)
    return strip_blank(l)
}

# --- markdown --------------------------------------------------------------

function md_text(s,   n, words, i, w, out) {
    n = split(s, words, " ")
    out = ""
    for (i = 1; i <= n; i++) {
        w = words[i]
        split_word(w)
        if (is_code(W_core)) w = md_esc(W_pre) "`" W_core "`" md_esc(W_post)
        else w = md_esc(w)
        out = out (i > 1 ? " " : "") w
    }
    return out
}

function md_esc(s) {
    gsub(/\\/, "\\\\", s)
    gsub(/\*/, "\\*", s)
    gsub(/</, "\\<", s)
    gsub(/>/, "\\>", s)
    gsub(/\[/, "\\[", s)
    gsub(/\]/, "\\]", s)
    gsub(/`/, "\\`", s)
    return s
}

function md_anchor(name) { return name }

function md_errors(d,   n, lines, i, l, out, ind0, ind) {
    n = split(doc_errors[d], lines, "\n")
    if (n == 1 && lines[1] !~ /^ *-E/) return "**Errors:** " md_text(trim(lines[1])) "\n\n"
    out = "**Errors:**\n\n"
    ind0 = indent_of(lines[1])
    for (i = 1; i <= n; i++) {
        l = lines[i]
        ind = indent_of(l)
        l = trim(l)
        if (l == "") continue
        if (ind <= ind0) {
            if (match(l, /^-E[A-Z0-9]+/)) {
                out = out "- `" substr(l, 1, RLENGTH) "`"
                l = trim(substr(l, RLENGTH + 1))
                out = out (l != "" ? ": " md_text(l) : "") "\n"
            } else {
                out = out "- " md_text(l) "\n"
            }
        } else {
            out = out "  " md_text(l) "\n"
        }
    }
    return out "\n"
}

function md_see_also(d,   n, refs, i, out) {
    n = split(doc_seealso[d], refs, " ")
    if (n == 0) return ""
    out = "**See also:** "
    for (i = 1; i <= n; i++)
        out = out (i > 1 ? ", " : "") "[`" refs[i] "`](#" md_anchor(refs[i]) ")"
    return out "\n\n"
}

function md_heading_names(d,   n, names, i, out) {
    n = split(doc_names[d], names, " ")
    out = ""
    for (i = 1; i <= n; i++) out = out (i > 1 ? ", " : "") names[i]
    return out
}

function write_md(   out, s, d, n, names, k, ex, shown, text, slug, anchors) {
    out = "# libnetcore API reference\n\n"
    out = out "<!-- Generated from include/netcore.h by docs/gen-docs.awk (make api-md).\n"
    out = out "     Do not edit: change the header's comments and regenerate. -->\n\n"
    out = out "libnetcore " version ": " md_text(preface_summary()) ".\n"
    out = out "This page, like the man pages (`man netcore`, `man nc_listen`, ...),\n"
    out = out "is generated from the comments of `include/netcore.h`. For the reasons\n"
    out = out "behind the design see [design.md](design.md); for the classic epoll bugs\n"
    out = out "the library removes see [pitfalls.md](pitfalls.md). Every section ends\n"
    out = out "with a complete program from [examples/](examples/).\n\n"
    out = out "Contents:"
    for (s = 1; s <= nsec; s++)
        out = out (s > 1 ? "," : "") " [" sec_title[s] "](#" md_slug(sec_title[s]) ")"
    out = out ".\n\n"
    out = out render_md_preface()
    for (s = 1; s <= nsec; s++) {
        out = out "## " sec_title[s] "\n\n"
        if (sec_src[s] != "") out = out "(" md_src(sec_src[s]) ")\n\n"
        if (sec_intro[s] != "") out = out render(sec_intro[s], "md", 0)
        for (d = 1; d <= ndoc; d++) {
            if (doc_sec[d] != s) continue
            n = split(doc_names[d], names, " ")
            for (k = 1; k <= n; k++) out = out "<a id=\"" md_anchor(names[k]) "\"></a>\n"
            out = out "### " md_heading_names(d) "\n\n"
            out = out "```c\n" doc_decl[d] "\n```\n\n"
            out = out render(doc_summary[d] (doc_desc[d] == "" ? "" : "\n\n" doc_desc[d]), "md", 0)
            if (doc_returns[d] != "") out = out "**Returns:** " render_inline(doc_returns[d]) "\n\n"
            if (doc_errors[d] != "") out = out md_errors(d)
            if (doc_thread[d] != "") out = out "**Thread:** " render_inline(doc_thread[d]) "\n\n"
            out = out md_see_also(d)
        }
        if (sec_example[s] != "") {
            out = out "### Example: " sec_title[s] "\n\n"
            ex = sec_example[s]
            if (ex in shown) {
                out = out "See the example of [" shown[ex] "](#" md_slug("example: " shown[ex]) "), `" ex "`.\n\n"
            } else {
                shown[ex] = sec_title[s]
                text = example_text(s)
                out = out "`" ex "`, compiled and run by `make check`:\n\n```c\n" text "```\n\n"
            }
        }
    }
    sub(/\n+$/, "\n", out)
    printf "%s", out > md
    close(md)
}

# A paragraph kept on one logical line for "**Label:** text".
function render_inline(t,   r) {
    r = render(t, "md", 0)
    sub(/\n+$/, "", r)
    return r
}

function render_md_preface(   body, r) {
    body = preface_body()
    r = render(body, "md", 1)
    gsub(/(^|\n)### /, "\n## ", r)
    sub(/^\n/, "", r)
    return r
}

function md_src(s,   n, parts, i, out) {
    n = split(s, parts, ", ")
    out = ""
    for (i = 1; i <= n; i++) out = out (i > 1 ? ", " : "") "`" parts[i] "`"
    return out
}

# GitHub's heading anchors: lower case, spaces to "-", most punctuation
# dropped.
function md_slug(t) {
    t = tolower(t)
    gsub(/[^a-z0-9 _-]/, "", t)
    gsub(/ /, "-", t)
    return t
}

# --- main ----------------------------------------------------------------

END {
    if (pending) free_comment()
    if (mode == "list") {
        for (i = 1; i <= nfn; i++) print fn_name[i] ".3"
        print "netcore.3"
        print "libnetcore.3"
        exit 0
    }
    check_all()
    if (mode == "check") exit(nprob > 0)
    if (mandir == "" || md == "") {
        print "gen-docs.awk: mode=gen needs -v mandir=DIR -v md=FILE" > "/dev/stderr"
        exit 2
    }
    if (nprob > 0)
        printf "gen-docs.awk: %d convention problem(s) above; pages written anyway\n", nprob > "/dev/stderr"
    for (i = 1; i <= nfn; i++) write_fn_page(i)
    write_overview()
    write_md()
}
