//! One round's findings and the report table over all rounds.

use std::time::Duration;

/// What one round of one fault found. Every count but `replaced` is an error.
#[derive(Debug, Clone, Default)]
pub struct RoundResult {
    pub fault: &'static str,
    /// From the fault's end to a clean state (held for a moment); None: not within the bound.
    pub converged: Option<Duration>,
    pub ghosts: usize,
    pub missing: usize,
    pub wrong_lists: usize,
    /// |feed subscription_count − live subscribers| when it got worse.
    pub occupancy: usize,
    pub lost_triggers: usize,
    pub dup_triggers: usize,
    /// Webhook accounts gone off: lost or unpaired member_added/removed, occupied/vacated.
    pub lost_hooks: usize,
    /// Clients the server closed, replaced as pusher-js reconnects (not an error).
    pub replaced: usize,
    /// What was wrong, in words.
    pub notes: Vec<String>,
}

impl RoundResult {
    fn counts(&self) -> [usize; 7] {
        [
            self.ghosts,
            self.missing,
            self.wrong_lists,
            self.occupancy,
            self.lost_triggers,
            self.dup_triggers,
            self.lost_hooks,
        ]
    }

    pub fn errors(&self) -> usize {
        self.counts().iter().sum::<usize>() + usize::from(self.converged.is_none())
    }
}

const HEADER: [&str; 11] = [
    "fault",
    "rounds",
    "conv ms",
    "ghosts",
    "missing",
    "bad lists",
    "occupancy",
    "lost trig",
    "dup trig",
    "lost hooks",
    "replaced",
];

/// One line per fault kind (in the order first run): rounds, the slowest convergence
/// ("never" past the bound), and the sums of every count.
pub fn table(results: &[RoundResult]) -> String {
    let mut kinds: Vec<&str> = Vec::new();
    for r in results {
        if !kinds.contains(&r.fault) {
            kinds.push(r.fault);
        }
    }
    let mut lines = vec![row(HEADER.map(String::from))];
    for kind in kinds {
        let rounds: Vec<&RoundResult> = results.iter().filter(|r| r.fault == kind).collect();
        let slowest = rounds
            .iter()
            .map(|r| r.converged)
            .try_fold(Duration::ZERO, |max, c| c.map(|c| max.max(c)));
        let sum = |i: usize| {
            rounds
                .iter()
                .map(|r| r.counts()[i])
                .sum::<usize>()
                .to_string()
        };
        lines.push(row([
            kind.to_owned(),
            rounds.len().to_string(),
            slowest.map_or("never".to_owned(), |d| d.as_millis().to_string()),
            sum(0),
            sum(1),
            sum(2),
            sum(3),
            sum(4),
            sum(5),
            sum(6),
            rounds.iter().map(|r| r.replaced).sum::<usize>().to_string(),
        ]));
    }
    lines.join("\n")
}

fn row(cells: [String; 11]) -> String {
    let mut line = format!("{:<24}", cells[0]);
    for (cell, head) in cells.iter().zip(HEADER).skip(1) {
        line.push_str(&format!(" {:>w$}", cell, w = head.len().max(6)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_sums_per_kind_and_shows_the_slowest_convergence() {
        let round = |fault, ms: Option<u64>, ghosts| RoundResult {
            fault,
            converged: ms.map(Duration::from_millis),
            ghosts,
            replaced: 1,
            ..RoundResult::default()
        };
        let results = [
            round("a", Some(10), 0),
            round("b", Some(5), 2),
            round("a", Some(30), 1),
            round("b", None, 0),
        ];
        let table = table(&results);
        let lines: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[1],
            ["a", "2", "30", "1", "0", "0", "0", "0", "0", "0", "2"]
        );
        assert_eq!(
            lines[2],
            ["b", "2", "never", "2", "0", "0", "0", "0", "0", "0", "2"]
        );
        assert_eq!(results[3].errors(), 1);
        assert_eq!(results[1].errors(), 2);
    }
}
