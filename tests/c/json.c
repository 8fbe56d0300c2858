/* See json.h. */
#include "json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;
    char *err;
    size_t errlen;
    int depth;
} parser;

static json_value *parse_value(parser *ps);

static void set_err(parser *ps, const char *what) {
    if (ps->err && ps->err[0] == '\0') snprintf(ps->err, ps->errlen, "%s near '%.20s'", what, ps->p);
}

static void skip_ws(parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

static json_value *new_value(json_type t) {
    json_value *v = calloc(1, sizeof *v);
    if (v) v->type = t;
    return v;
}

static int hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *out, unsigned cp) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

/* Parses a string literal at ps->p (which points at the opening quote). */
static char *parse_string_raw(parser *ps, size_t *len_out) {
    const char *s = ps->p + 1;
    size_t cap = strlen(s) + 1; /* decoded text is never longer than the source */
    char *out = malloc(cap);
    size_t n = 0;
    if (!out) { set_err(ps, "out of memory"); return NULL; }
    for (;;) {
        unsigned char c = (unsigned char)*s;
        if (c == '\0') { set_err(ps, "unterminated string"); free(out); return NULL; }
        if (c == '"') { s++; break; }
        if (c < 0x20) { set_err(ps, "control character in string"); free(out); return NULL; }
        if (c != '\\') { out[n++] = (char)c; s++; continue; }
        s++;
        switch (*s) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(s + 1, &cp) != 0) { set_err(ps, "bad \\u escape"); free(out); return NULL; }
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && s[1] == '\\' && s[2] == 'u' && hex4(s + 3, &lo) == 0 &&
                lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
            n += put_utf8(out + n, cp);
            break;
        }
        default: set_err(ps, "bad escape"); free(out); return NULL;
        }
        s++;
    }
    out[n] = '\0';
    ps->p = s;
    *len_out = n;
    return out;
}

static int push(json_value *v, json_value *item, char *key) {
    json_value **items = realloc(v->items, (v->len + 1) * sizeof *items);
    if (!items) return -1;
    v->items = items;
    if (v->type == JSON_OBJECT) {
        char **keys = realloc(v->keys, (v->len + 1) * sizeof *keys);
        if (!keys) return -1;
        v->keys = keys;
        v->keys[v->len] = key;
    }
    v->items[v->len++] = item;
    return 0;
}

static json_value *parse_container(parser *ps, int object) {
    json_value *v = new_value(object ? JSON_OBJECT : JSON_ARRAY);
    if (!v) { set_err(ps, "out of memory"); return NULL; }
    if (++ps->depth > 64) { set_err(ps, "nested too deep"); json_free(v); return NULL; }
    ps->p++;
    skip_ws(ps);
    if (*ps->p == (object ? '}' : ']')) { ps->p++; ps->depth--; return v; }
    for (;;) {
        char *key = NULL;
        size_t klen;
        skip_ws(ps);
        if (object) {
            if (*ps->p != '"') { set_err(ps, "expected a key"); json_free(v); return NULL; }
            key = parse_string_raw(ps, &klen);
            if (!key) { json_free(v); return NULL; }
            skip_ws(ps);
            if (*ps->p != ':') { set_err(ps, "expected ':'"); free(key); json_free(v); return NULL; }
            ps->p++;
        }
        json_value *item = parse_value(ps);
        if (!item) { free(key); json_free(v); return NULL; }
        if (push(v, item, key) != 0) { set_err(ps, "out of memory"); free(key); json_free(item); json_free(v); return NULL; }
        skip_ws(ps);
        if (*ps->p == ',') { ps->p++; continue; }
        if (*ps->p == (object ? '}' : ']')) { ps->p++; break; }
        set_err(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
        json_free(v);
        return NULL;
    }
    ps->depth--;
    return v;
}

static json_value *parse_value(parser *ps) {
    skip_ws(ps);
    const char *p = ps->p;
    if (*p == '{' || *p == '[') return parse_container(ps, *p == '{');
    if (*p == '"') {
        json_value *v = new_value(JSON_STRING);
        if (!v) return NULL;
        v->string = parse_string_raw(ps, &v->len);
        if (!v->string) { free(v); return NULL; }
        return v;
    }
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        json_value *v = new_value(JSON_BOOL);
        if (!v) return NULL;
        v->boolean = p[0] == 't';
        ps->p += v->boolean ? 4 : 5;
        return v;
    }
    if (strncmp(p, "null", 4) == 0) {
        ps->p += 4;
        return new_value(JSON_NULL);
    }
    if (*p == '-' || isdigit((unsigned char)*p)) {
        char *end;
        double d = strtod(p, &end);
        if (end == p) { set_err(ps, "bad number"); return NULL; }
        json_value *v = new_value(JSON_NUMBER);
        if (!v) return NULL;
        v->number = d;
        ps->p = end;
        return v;
    }
    set_err(ps, "unexpected character");
    return NULL;
}

json_value *json_parse(const char *text, char *err, size_t errlen) {
    parser ps = {text, err, errlen, 0};
    if (err && errlen) err[0] = '\0';
    json_value *v = parse_value(&ps);
    if (!v) return NULL;
    skip_ws(&ps);
    if (*ps.p != '\0') { set_err(&ps, "trailing characters"); json_free(v); return NULL; }
    return v;
}

void json_free(json_value *v) {
    if (!v) return;
    for (size_t i = 0; i < v->len && v->items; i++) {
        json_free(v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    free(v);
}

const json_value *json_get(const json_value *v, const char *key) {
    if (!v || v->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < v->len; i++)
        if (strcmp(v->keys[i], key) == 0) return v->items[i];
    return NULL;
}

const char *json_get_str(const json_value *v, const char *key) {
    const json_value *s = json_get(v, key);
    return s && s->type == JSON_STRING ? s->string : NULL;
}

int json_equal(const json_value *a, const json_value *b) {
    if (!a || !b) return a == b;
    if (a->type != b->type) return 0;
    switch (a->type) {
    case JSON_NULL: return 1;
    case JSON_BOOL: return a->boolean == b->boolean;
    case JSON_NUMBER: return a->number == b->number;
    case JSON_STRING: return a->len == b->len && memcmp(a->string, b->string, a->len) == 0;
    case JSON_ARRAY:
        if (a->len != b->len) return 0;
        for (size_t i = 0; i < a->len; i++)
            if (!json_equal(a->items[i], b->items[i])) return 0;
        return 1;
    case JSON_OBJECT:
        if (a->len != b->len) return 0;
        for (size_t i = 0; i < a->len; i++)
            if (!json_equal(a->items[i], json_get(b, a->keys[i]))) return 0;
        return 1;
    }
    return 0;
}

char *json_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (n + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) { free(buf); buf = NULL; break; }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}
