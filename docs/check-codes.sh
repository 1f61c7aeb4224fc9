#!/bin/bash
# check-codes.sh: every finding code the sources can emit must be
# documented in docs/codes.rst.
#
# Usage: docs/check-codes.sh [SOURCE_ROOT]
#        (SOURCE_ROOT defaults to the directory above this script)
#
# Output is TAP: one "ok"/"not ok" line per code found in src/, then
# comment lines ("# ...") for codes documented but no longer emitted.
# Exit status: 0 all documented, 1 something undocumented or the
# extraction found nothing (a sign that it no longer matches the code),
# 2 usage error.
#
# How codes are extracted (perl, core modules only), over src/**/*.c and
# src/**/*.h:
#
#   1. Code-taking functions are found automatically: every prototype or
#      definition with a parameter declared "const char *code" (e.g.
#      vmm_machine__warn, vmm_machine__error, vfio_device__block,
#      dmg_libvirt_block, discard_inhibitor__init, migration_blockers__add,
#      migration_blockers__add_condition, migration_blockers__find), with
#      the position of that parameter.
#   2. At every call of such a function, the argument in that position is
#      taken; every string literal in it that is kebab-case
#      ([a-z][a-z0-9]*(-[a-z0-9]+)+) is a code.  This covers both
#      f(m, "code", ...) and f(m, c ? c : "realize-failed", ...).
#   3. Every kebab-case string literal inside an array initializer whose
#      name contains "code" (static const char *const vmm_error_codes[] =
#      { [VMM_ERR_X] = "code", ... }) is a code: these are the GError codes
#      of device realize, turned into strings by vmm_error_code__to_string().
#
# A code counts as documented when docs/codes.rst contains it in double
# backticks: ``code``.

set -u

root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
doc="$root/docs/codes.rst"

if [ ! -d "$root/src" ] || [ ! -f "$doc" ]; then
    echo "usage: $0 [SOURCE_ROOT]  (needs SOURCE_ROOT/src and SOURCE_ROOT/docs/codes.rst)" >&2
    exit 2
fi

mapfile -t files < <(find "$root/src" -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
if [ "${#files[@]}" -eq 0 ]; then
    echo "Bail out! no C sources under $root/src"
    exit 1
fi

# Prints "code<TAB>file:line" for every code, sorted by code, first site only.
extract() {
    perl - "${files[@]}" <<'PERL'
use strict;
use warnings;

my $kebab = qr/^[a-z][a-z0-9]*(?:-[a-z0-9]+)+$/;
my %src;
for my $f (@ARGV) {
    open(my $fh, "<", $f) or die "$f: $!\n";
    local $/;
    my $text = <$fh>;
    close $fh;
    # Comments go, so that example calls in them do not count; string
    # literals are kept intact (a "/*" inside one is left alone).
    $text =~ s{("(?:\\.|[^"\\])*")|/\*.*?\*/|//[^\n]*}{defined $1 ? $1 : (substr($&, 0, 2) eq "/*" ? ("\n" x ($& =~ tr/\n//)) : "")}gse;
    $src{$f} = $text;
}

# Split an argument list at top-level commas; quotes and brackets nest.
sub split_args {
    my ($s) = @_;
    my (@args, $cur, $depth, $i);
    ($cur, $depth) = ("", 0);
    for ($i = 0; $i < length $s; $i++) {
        my $c = substr($s, $i, 1);
        if ($c eq q{"} || $c eq q{'}) {
            my $q = $c;
            my $j = $i + 1;
            while ($j < length $s) {
                my $d = substr($s, $j, 1);
                if ($d eq "\\") { $j += 2; next; }
                last if $d eq $q;
                $j++;
            }
            $cur .= substr($s, $i, $j - $i + 1);
            $i = $j;
            next;
        }
        $depth++ if $c =~ /[(\[{]/;
        $depth-- if $c =~ /[)\]}]/;
        if ($c eq "," && $depth == 0) { push @args, $cur; $cur = ""; next; }
        $cur .= $c;
    }
    push @args, $cur;
    return @args;
}

# The text from an opening parenthesis to its match (exclusive).
sub balanced {
    my ($text, $open) = @_;
    my ($depth, $i) = (0, $open);
    for (; $i < length $text; $i++) {
        my $c = substr($text, $i, 1);
        if ($c eq q{"} || $c eq q{'}) {
            my $q = $c;
            $i++;
            while ($i < length $text) {
                my $d = substr($text, $i, 1);
                if ($d eq "\\") { $i += 2; next; }
                last if $d eq $q;
                $i++;
            }
            next;
        }
        $depth++ if $c eq "(";
        if ($c eq ")") {
            $depth--;
            return substr($text, $open + 1, $i - $open - 1) if $depth == 0;
        }
    }
    return undef;
}

sub line_of { my ($text, $pos) = @_; return 1 + (substr($text, 0, $pos) =~ tr/\n//); }

my %codes;
sub add {
    my ($code, $f, $line) = @_;
    return unless $code =~ $kebab;
    $codes{$code} //= "$f:$line";
}

# 1. Functions with a "const char *code" parameter, and its position.
my %fn;
for my $f (sort keys %src) {
    my $t = $src{$f};
    while ($t =~ /\b([A-Za-z_]\w*)\s*\(/g) {
        my ($name, $open) = ($1, pos($t) - 1);
        next if $name =~ /^(?:if|while|for|switch|return|sizeof)$/;
        my $inner = balanced($t, $open);
        next unless defined $inner && $inner =~ /\bconst\s+char\s*\*\s*code\b/;
        my @params = split_args($inner);
        for my $k (0 .. $#params) {
            if ($params[$k] =~ /^\s*const\s+char\s*\*\s*code\s*$/) {
                $fn{$name} = $k;
                last;
            }
        }
    }
}
die "no function with a \"const char *code\" parameter found under src/\n" unless %fn;

# 2. Their call sites: literals in the code argument.
for my $f (sort keys %src) {
    my $t = $src{$f};
    for my $name (sort keys %fn) {
        while ($t =~ /\b\Q$name\E\s*\(/g) {
            my $open = pos($t) - 1;
            my $inner = balanced($t, $open);
            next unless defined $inner;
            my @args = split_args($inner);
            next unless $#args >= $fn{$name};
            my $arg = $args[$fn{$name}];
            while ($arg =~ /"((?:\\.|[^"\\])*)"/g) {
                add($1, $f, line_of($t, $open));
            }
        }
    }
}

# 3. Arrays of code strings: "...code...[] = { ... };"
for my $f (sort keys %src) {
    my $t = $src{$f};
    while ($t =~ /\b(\w*code\w*)\s*\[[^\]]*\]\s*=\s*\{/g) {
        my $start = pos($t);
        my $end = index($t, "};", $start);
        next if $end < 0;
        my $body = substr($t, $start, $end - $start);
        while ($body =~ /"((?:\\.|[^"\\])*)"/g) {
            add($1, $f, line_of($t, $start + pos($body)));
        }
    }
}

for my $c (sort keys %codes) {
    print "$c\t$codes{$c}\n";
}
PERL
}

if ! found=$(extract); then
    echo "Bail out! extracting codes from $root/src failed"
    exit 1
fi
if [ -z "$found" ]; then
    echo "Bail out! no codes found under $root/src: the extraction no longer matches the sources"
    exit 1
fi

n=$(printf '%s\n' "$found" | wc -l)
echo "1..$n"
i=0
fail=0
while IFS=$'\t' read -r code site; do
    i=$((i + 1))
    if grep -qF -- "\`\`$code\`\`" "$doc"; then
        echo "ok $i - $code"
    else
        echo "not ok $i - $code is not documented in docs/codes.rst (emitted at ${site#"$root"/})"
        fail=1
    fi
done <<< "$found"

# Codes documented as a section title but not emitted any more: reported,
# not failed, since a code may be documented before it is implemented.
while read -r code; do
    if ! printf '%s\n' "$found" | cut -f1 | grep -qxF -- "$code"; then
        echo "# documented but not found in src/: $code"
    fi
done < <(sed -nE 's/^``([a-z][a-z0-9]*(-[a-z0-9]+)+)``[[:space:]]*$/\1/p' "$doc" | LC_ALL=C sort -u)

exit $fail
