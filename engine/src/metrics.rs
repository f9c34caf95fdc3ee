//! Loss and accuracy accumulators (overall and per class).

/// Index of the largest value of `row` (the first one on ties; 0 for an empty row).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Running sums of loss and correct predictions.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    loss_sum: f64,
    correct: usize,
    count: usize,
    class_correct: Vec<usize>,
    class_count: Vec<usize>,
}

impl Accumulator {
    /// An empty accumulator tracking `classes` classes.
    pub fn new(classes: usize) -> Self {
        Self {
            class_correct: vec![0; classes],
            class_count: vec![0; classes],
            ..Self::default()
        }
    }

    /// Adds a batch: its mean loss, and `probs` `[n, classes]` against `labels` `[n]`.
    pub fn add_batch(&mut self, mean_loss: f32, probs: &[f32], labels: &[u32]) {
        let classes = self.class_count.len().max(1);
        self.loss_sum += f64::from(mean_loss) * labels.len() as f64;
        for (row, &l) in probs.chunks_exact(classes).zip(labels) {
            let hit = argmax(row) == l as usize;
            self.correct += usize::from(hit);
            if let (Some(c), Some(k)) = (
                self.class_count.get_mut(l as usize),
                self.class_correct.get_mut(l as usize),
            ) {
                *c += 1;
                *k += usize::from(hit);
            }
        }
        self.count += labels.len();
    }

    /// Examples seen.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Mean loss so far (0 before any example).
    pub fn loss(&self) -> f32 {
        (self.loss_sum / self.count.max(1) as f64) as f32
    }

    /// Fraction correct so far (0 before any example).
    pub fn accuracy(&self) -> f32 {
        (self.correct as f64 / self.count.max(1) as f64) as f32
    }

    /// Accuracy of each class (0 for a class with no example).
    pub fn per_class_accuracy(&self) -> Vec<f32> {
        self.class_correct
            .iter()
            .zip(&self.class_count)
            .map(|(&k, &c)| (k as f64 / c.max(1) as f64) as f32)
            .collect()
    }

    /// Examples of each class.
    pub fn per_class_count(&self) -> &[usize] {
        &self.class_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulates_loss_accuracy_and_per_class() {
        let mut a = Accumulator::new(2);
        a.add_batch(1.0, &[0.9, 0.1, 0.2, 0.8, 0.7, 0.3], &[0, 1, 1]);
        a.add_batch(4.0, &[0.4, 0.6], &[1]);
        assert_eq!(a.count(), 4);
        assert!((a.loss() - 7.0 / 4.0).abs() < 1e-6);
        assert!((a.accuracy() - 0.75).abs() < 1e-6);
        assert_eq!(a.per_class_accuracy(), vec![1.0, 2.0 / 3.0]);
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }
}
