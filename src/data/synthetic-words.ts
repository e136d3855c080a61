/** Word lists the synthetic catalogue composes item titles from, one entry per category. */
export interface CategoryWords {
  readonly name: string;
  readonly adjectives: readonly string[];
  readonly nouns: readonly string[];
  /** Price range in currency units; prices are drawn log-uniformly inside it. */
  readonly priceRange: readonly [number, number];
}

export const CATEGORY_WORDS: readonly CategoryWords[] = [
  {
    name: 'Shoes',
    adjectives: ['Trail', 'Classic', 'Leather', 'Canvas', 'Running', 'Suede', 'Waterproof', 'Lightweight'],
    nouns: ['Sneakers', 'Boots', 'Loafers', 'Sandals', 'Trainers', 'Slip-ons', 'Brogues', 'Hiking Shoes'],
    priceRange: [25, 220],
  },
  {
    name: 'Books',
    adjectives: ['Illustrated', 'Pocket', 'Collected', 'Annotated', 'First', 'Complete', 'Hardcover', 'Modern'],
    nouns: ['Cookbook', 'Thriller', 'Atlas', 'Poetry', 'Biography', 'Field Guide', 'Novel', 'Short Stories'],
    priceRange: [6, 60],
  },
  {
    name: 'Electronics',
    adjectives: ['Wireless', 'Compact', 'Smart', 'Portable', 'Noise-Cancelling', 'Ultra', 'Pro', 'Mini'],
    nouns: ['Headphones', 'Speaker', 'Charger', 'Camera', 'Keyboard', 'Monitor', 'Tablet', 'Power Bank'],
    priceRange: [15, 900],
  },
  {
    name: 'Kitchen',
    adjectives: ['Cast-Iron', 'Non-Stick', 'Stainless', 'Ceramic', 'Bamboo', 'Copper', 'Enamel', 'Glass'],
    nouns: ['Skillet', 'Saucepan', 'Knife Set', 'Cutting Board', 'Kettle', 'Mixing Bowls', 'Dutch Oven', 'Teapot'],
    priceRange: [8, 250],
  },
  {
    name: 'Garden',
    adjectives: ['Folding', 'Heavy-Duty', 'Solar', 'Raised', 'Ergonomic', 'Terracotta', 'Galvanised', 'Cedar'],
    nouns: ['Trowel', 'Planter', 'Hose', 'Pruners', 'Lantern', 'Seed Tray', 'Watering Can', 'Bird Feeder'],
    priceRange: [5, 180],
  },
  {
    name: 'Toys',
    adjectives: ['Wooden', 'Plush', 'Magnetic', 'Remote-Control', 'Musical', 'Stacking', 'Glow', 'Puzzle'],
    nouns: ['Blocks', 'Bear', 'Train Set', 'Robot', 'Kite', 'Dollhouse', 'Race Car', 'Marble Run'],
    priceRange: [7, 120],
  },
  {
    name: 'Sports',
    adjectives: ['Pro', 'Training', 'Adjustable', 'Foam', 'Carbon', 'Grip', 'Outdoor', 'Weighted'],
    nouns: ['Yoga Mat', 'Dumbbells', 'Tennis Racket', 'Football', 'Jump Rope', 'Water Bottle', 'Helmet', 'Gloves'],
    priceRange: [8, 300],
  },
  {
    name: 'Beauty',
    adjectives: ['Hydrating', 'Gentle', 'Organic', 'Matte', 'Vitamin C', 'Soothing', 'Fragrance-Free', 'Daily'],
    nouns: ['Moisturiser', 'Serum', 'Lip Balm', 'Shampoo', 'Face Mask', 'Sunscreen', 'Cleanser', 'Hand Cream'],
    priceRange: [4, 90],
  },
  {
    name: 'Clothing',
    adjectives: ['Linen', 'Wool', 'Slim-Fit', 'Oversized', 'Organic Cotton', 'Striped', 'Denim', 'Knitted'],
    nouns: ['Shirt', 'Jumper', 'Jeans', 'Jacket', 'Dress', 'Scarf', 'Hoodie', 'Trousers'],
    priceRange: [12, 260],
  },
  {
    name: 'Music',
    adjectives: ['Acoustic', 'Electric', 'Vintage', 'Student', 'Studio', 'Travel', 'Deluxe', 'Left-Handed'],
    nouns: ['Guitar', 'Ukulele', 'Keyboard', 'Drum Pads', 'Microphone', 'Violin', 'Harmonica', 'Metronome'],
    priceRange: [10, 1200],
  },
  {
    name: 'Pets',
    adjectives: ['Orthopaedic', 'Chew-Proof', 'Reflective', 'Grain-Free', 'Self-Cleaning', 'Cosy', 'Travel', 'Interactive'],
    nouns: ['Dog Bed', 'Cat Tree', 'Leash', 'Food Bowl', 'Litter Box', 'Ball Launcher', 'Carrier', 'Scratching Post'],
    priceRange: [5, 200],
  },
  {
    name: 'Office',
    adjectives: ['Ergonomic', 'Recycled', 'Refillable', 'Magnetic', 'Standing', 'Leather', 'Minimalist', 'Dotted'],
    nouns: ['Notebook', 'Desk Lamp', 'Fountain Pen', 'Chair', 'Organiser', 'Whiteboard', 'Desk', 'Planner'],
    priceRange: [3, 450],
  },
];
